package dev.tandem.model.gguf;

import dev.tandem.model.TensorType;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongConsumer;

/**
 * Writes a GGUF version 3 file: metadata of every value type, a tensor directory, and tensor data streamed to
 * disk tensor by tensor, so a model far larger than the heap can be written.
 *
 * <p>Use: {@link #put} metadata and {@link #addTensor} tensors (each with a {@link TensorData} that produces its
 * bytes when asked), then {@link #write}. Metadata and tensors keep the order they were added in. The file is
 * written next to its destination under a {@code .partial} name and moved into place when complete, so a failed
 * or interrupted write never leaves a truncated model behind.
 *
 * <p>Alignment: tensor data starts at a multiple of {@link #alignment()}, which is the value of
 * {@code general.alignment} when it was put (as UINT32, a power of two) and 32 otherwise; the gaps are zeros.
 */
public final class GgufWriter {
    /** A metadata value with its declared GGUF type. */
    private record Entry(GgufValueType type, Object value) {}

    private record TensorEntry(String name, TensorType type, long[] shape, long bytes, TensorData data) {}

    /** Produces a tensor's bytes, in order, into a sink; the writer checks the total. */
    @FunctionalInterface
    public interface TensorData {
        void writeTo(TensorSink sink) throws IOException;
    }

    /** Where a {@link TensorData} puts its bytes: consecutive writes append. */
    public interface TensorSink {
        void write(MemorySegment bytes) throws IOException;
    }

    /**
     * A typed metadata array. {@code elements} is a Java array matching {@code elementType}: {@code int[]} for
     * UINT8, INT8, UINT16, INT16 and INT32; {@code long[]} for UINT32, UINT64 and INT64; {@code float[]},
     * {@code double[]}, {@code boolean[]}, {@code String[]}; and {@code ArrayValue[]} for ARRAY (arrays of
     * arrays, each inner array with its own element type).
     */
    public record ArrayValue(GgufValueType elementType, Object elements) {
        public ArrayValue {
            Objects.requireNonNull(elementType, "elementType");
            Objects.requireNonNull(elements, "elements");
            Class<?> expected = switch (elementType) {
                case UINT8, INT8, UINT16, INT16, INT32 -> int[].class;
                case UINT32, UINT64, INT64 -> long[].class;
                case FLOAT32 -> float[].class;
                case FLOAT64 -> double[].class;
                case BOOL -> boolean[].class;
                case STRING -> String[].class;
                case ARRAY -> ArrayValue[].class;
            };
            if (!expected.isInstance(elements)) {
                throw new IllegalArgumentException("a GGUF array of " + elementType + " needs a " + expected.getSimpleName()
                        + ", got " + elements.getClass().getSimpleName());
            }
        }

        public int length() { return java.lang.reflect.Array.getLength(elements); }

        public static ArrayValue ofStrings(String... values) { return new ArrayValue(GgufValueType.STRING, values); }

        public static ArrayValue ofInt32(int... values) { return new ArrayValue(GgufValueType.INT32, values); }

        public static ArrayValue ofFloat32(float... values) { return new ArrayValue(GgufValueType.FLOAT32, values); }

        public static ArrayValue ofArrays(ArrayValue... values) { return new ArrayValue(GgufValueType.ARRAY, values); }
    }

    private static final int VERSION = 3;
    /** Largest slice handed to the channel at once (ByteBuffers are int-indexed). */
    private static final long WRITE_CHUNK = 64L << 20;
    private static final int STAGING_BYTES = 1 << 20;

    private final Map<String, Entry> metadata = new LinkedHashMap<>();
    private final List<TensorEntry> tensors = new ArrayList<>();

    // ---- metadata ---------------------------------------------------------------------------------------------

    /**
     * Sets {@code key} to {@code value} of type {@code type}: a {@code Number} in range for the integer and float
     * types (UINT64 takes any {@code long}, read as unsigned), a {@code Boolean} for BOOL, a {@code String} for
     * STRING and an {@link ArrayValue} for ARRAY. Setting an existing key replaces its value in place.
     */
    public GgufWriter put(String key, GgufValueType type, Object value) {
        Objects.requireNonNull(key, "key");
        check(key, type, value);
        metadata.put(key, new Entry(type, value));
        return this;
    }

    public GgufWriter putString(String key, String value) { return put(key, GgufValueType.STRING, value); }

    public GgufWriter putUInt32(String key, long value) { return put(key, GgufValueType.UINT32, value); }

    public GgufWriter putInt32(String key, int value) { return put(key, GgufValueType.INT32, value); }

    public GgufWriter putFloat32(String key, float value) { return put(key, GgufValueType.FLOAT32, value); }

    public GgufWriter putBool(String key, boolean value) { return put(key, GgufValueType.BOOL, value); }

    public GgufWriter putArray(String key, ArrayValue value) { return put(key, GgufValueType.ARRAY, value); }

    /**
     * Sets {@code key} to a value as {@link GgufFile#metadata()} represents it, for copying metadata from one
     * file to another. The reader does not keep the declared type, so it is chosen from the Java type:
     * {@code Integer} → INT32, {@code Long} → UINT32 when in 0..2³²−1 else INT64, {@code Float} → FLOAT32,
     * {@code Double} → FLOAT64, {@code Boolean} → BOOL, {@code String} → STRING, and arrays element-wise by the
     * same rule ({@code long[]} → UINT32 when every element fits, else INT64; {@code Object[]} → arrays of
     * arrays). Values read back through {@link GgufFile} are equal to the originals; this is also the type
     * llama.cpp expects for the keys it reads (token ids and sizes UINT32, token types INT32).
     */
    public GgufWriter putAsRead(String key, Object value) {
        Objects.requireNonNull(value, () -> "metadata key '" + key + "' has no value");
        return switch (value) {
            case Integer i -> put(key, GgufValueType.INT32, i);
            case Long l -> put(key, fitsUInt32(l) ? GgufValueType.UINT32 : GgufValueType.INT64, l);
            case Float f -> put(key, GgufValueType.FLOAT32, f);
            case Double d -> put(key, GgufValueType.FLOAT64, d);
            case Boolean b -> put(key, GgufValueType.BOOL, b);
            case String s -> put(key, GgufValueType.STRING, s);
            default -> put(key, GgufValueType.ARRAY, arrayAsRead(key, value));
        };
    }

    private static ArrayValue arrayAsRead(String key, Object value) {
        return switch (value) {
            case int[] a -> new ArrayValue(GgufValueType.INT32, a);
            case long[] a -> new ArrayValue(Arrays.stream(a).allMatch(GgufWriter::fitsUInt32) ? GgufValueType.UINT32 : GgufValueType.INT64, a);
            case float[] a -> new ArrayValue(GgufValueType.FLOAT32, a);
            case double[] a -> new ArrayValue(GgufValueType.FLOAT64, a);
            case boolean[] a -> new ArrayValue(GgufValueType.BOOL, a);
            case String[] a -> new ArrayValue(GgufValueType.STRING, a);
            case Object[] a -> {
                ArrayValue[] inner = new ArrayValue[a.length];
                for (int i = 0; i < a.length; i++) inner[i] = arrayAsRead(key, a[i]);
                yield new ArrayValue(GgufValueType.ARRAY, inner);
            }
            default -> throw new IllegalArgumentException("metadata key '" + key + "' has a value of unsupported Java type "
                    + value.getClass().getSimpleName());
        };
    }

    private static boolean fitsUInt32(long v) { return v >= 0 && v <= 0xFFFF_FFFFL; }

    public GgufWriter remove(String key) {
        metadata.remove(key);
        return this;
    }

    public boolean has(String key) { return metadata.containsKey(key); }

    /** Alignment of tensor data: {@code general.alignment} when set, else 32. */
    public int alignment() {
        Entry e = metadata.get("general.alignment");
        return e == null ? GgufFile.DEFAULT_ALIGNMENT : ((Number) e.value).intValue();
    }

    private static void check(String key, GgufValueType type, Object value) {
        Objects.requireNonNull(type, "type");
        if (value == null) throw new IllegalArgumentException("metadata key '" + key + "' has no value");
        switch (type) {
            case STRING -> requireType(key, type, value, String.class);
            case BOOL -> requireType(key, type, value, Boolean.class);
            case ARRAY -> requireType(key, type, value, ArrayValue.class);
            case FLOAT32, FLOAT64 -> requireType(key, type, value, Number.class);
            default -> {
                requireType(key, type, value, Number.class);
                if (value instanceof Float || value instanceof Double) {
                    throw new IllegalArgumentException("metadata key '" + key + "' is " + type + " but the value " + value + " is not an integer");
                }
                checkRange(key, type, ((Number) value).longValue());
            }
        }
        if (key.equals("general.alignment")) {
            long a = ((Number) value).longValue();
            if (type != GgufValueType.UINT32 || a <= 0 || Long.bitCount(a) != 1) {
                throw new IllegalArgumentException("general.alignment must be a UINT32 power of two, got " + type + " " + value);
            }
        }
        if (value instanceof ArrayValue array) checkElements(key, array);
    }

    private static void checkElements(String key, ArrayValue array) {
        switch (array.elements()) {
            case int[] a -> { for (int v : a) checkRange(key, array.elementType(), v); }
            case long[] a -> { for (long v : a) checkRange(key, array.elementType(), v); }
            case String[] a -> { for (String s : a) Objects.requireNonNull(s, () -> "metadata array '" + key + "' holds a null string"); }
            case ArrayValue[] a -> { for (ArrayValue inner : a) checkElements(key, Objects.requireNonNull(inner, "inner array")); }
            default -> {}
        }
    }

    private static void checkRange(String key, GgufValueType type, long v) {
        boolean ok = switch (type) {
            case UINT8 -> v >= 0 && v <= 0xFF;
            case INT8 -> v >= Byte.MIN_VALUE && v <= Byte.MAX_VALUE;
            case UINT16 -> v >= 0 && v <= 0xFFFF;
            case INT16 -> v >= Short.MIN_VALUE && v <= Short.MAX_VALUE;
            case UINT32 -> fitsUInt32(v);
            case INT32 -> v == (int) v;
            default -> true;   // UINT64 (a long's bits, unsigned) and INT64 take any long
        };
        if (!ok) throw new IllegalArgumentException("metadata key '" + key + "' value " + v + " is out of range for " + type);
    }

    private static void requireType(String key, GgufValueType type, Object value, Class<?> expected) {
        if (!expected.isInstance(value)) {
            throw new IllegalArgumentException("metadata key '" + key + "' is " + type + " but the value is a "
                    + value.getClass().getSimpleName());
        }
    }

    // ---- tensors ----------------------------------------------------------------------------------------------

    /**
     * Adds a tensor of {@code type} with {@code shape} in ggml order (shape[0] is the row length, a multiple of
     * the type's block size); {@code data} must produce exactly {@code type.bytesFor(elements)} bytes.
     */
    public GgufWriter addTensor(String name, TensorType type, long[] shape, TensorData data) {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(data, "data");
        if (shape.length < 1 || shape.length > 4) throw new IllegalArgumentException("tensor '" + name + "' has " + shape.length + " dimensions (1 to 4 supported)");
        long elements = 1;
        for (long d : shape) {
            if (d <= 0) throw new IllegalArgumentException("tensor '" + name + "' has a dimension of size " + d + ": " + Arrays.toString(shape));
            elements = Math.multiplyExact(elements, d);
        }
        if (shape[0] % type.blockSize() != 0) {
            throw new IllegalArgumentException("tensor '" + name + "' row length " + shape[0] + " is not a multiple of the "
                    + type + " block size " + type.blockSize());
        }
        for (TensorEntry t : tensors) {
            if (t.name.equals(name)) throw new IllegalArgumentException("tensor '" + name + "' is added twice");
        }
        tensors.add(new TensorEntry(name, type, shape.clone(), type.bytesFor(elements), data));
        return this;
    }

    /** Bytes of the whole file {@link #write} would produce. */
    public long fileSize() {
        long size = align(headerBytes().length);
        for (TensorEntry t : tensors) size = align(size) + t.bytes;
        return size;
    }

    private long align(long x) { return GgufFile.alignUp(x, alignment()); }

    // ---- writing ----------------------------------------------------------------------------------------------

    /** Writes the file; see {@link #write(Path, LongConsumer)}. */
    public void write(Path path) throws IOException {
        write(path, bytes -> {});
    }

    /**
     * Writes the file to {@code path} (replacing it), calling {@code progress} with the number of bytes written
     * so far after each piece of tensor data. Only a regular file is replaced: a device, FIFO, folder or symbolic
     * link at {@code path} or at its {@code .partial} name is refused (as root, moving the partial file over
     * {@code /dev/full} would replace the device node). The partial file is removed when the write fails and when
     * the JVM is stopped by a signal meanwhile (a shutdown hook; SIGKILL leaves it, as nothing runs then).
     */
    public void write(Path path, LongConsumer progress) throws IOException {
        Path partial = path.resolveSibling(path.getFileName() + ".partial");
        requireReplaceable(path);
        requireReplaceable(partial);
        byte[] header = headerBytes();
        Thread removePartial = new Thread(() -> {
            try {
                Files.deleteIfExists(partial);
            } catch (IOException ignored) {
                // the JVM is stopping; nothing else can be done about it
            }
        }, "gguf-partial-cleanup");
        Runtime.getRuntime().addShutdownHook(removePartial);
        boolean done = false;
        try {
            try (FileChannel out = FileChannel.open(partial, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                    StandardOpenOption.TRUNCATE_EXISTING, LinkOption.NOFOLLOW_LINKS)) {
                Output o = new Output(out, progress);
                o.write(MemorySegment.ofArray(header));
                o.padTo(align(header.length));
                for (TensorEntry t : tensors) {
                    o.padTo(align(o.position));
                    long start = o.position;
                    t.data.writeTo(o::write);
                    if (o.position - start != t.bytes) {
                        throw new IllegalStateException("tensor '" + t.name + "' produced " + (o.position - start)
                                + " bytes, its " + t.type + " shape " + Arrays.toString(t.shape) + " needs " + t.bytes);
                    }
                }
            }
            requireReplaceable(path);
            try {
                Files.move(partial, path, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(partial, path, StandardCopyOption.REPLACE_EXISTING);
            }
            done = true;
        } finally {
            if (!done) Files.deleteIfExists(partial);
            try {
                Runtime.getRuntime().removeShutdownHook(removePartial);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or has run
            }
        }
    }

    /** Nothing, or a regular file (not through a link): what {@link #write} may replace. */
    private static void requireReplaceable(Path p) {
        if (Files.exists(p, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            throw new IllegalArgumentException(p + " is not a regular file (a device, FIFO, folder or link); only a regular file is replaced");
        }
    }

    /** The channel, the running position, and the progress callback. */
    private static final class Output {
        private final FileChannel channel;
        private final LongConsumer progress;
        private ByteBuffer staging;
        long position;

        Output(FileChannel channel, LongConsumer progress) {
            this.channel = channel;
            this.progress = progress;
        }

        void write(MemorySegment bytes) throws IOException {
            // Only native segments and byte[]-backed ones can be viewed as a ByteBuffer; others go through staging.
            boolean viewable = bytes.heapBase().map(base -> base instanceof byte[]).orElse(true);
            long chunk = viewable ? WRITE_CHUNK : STAGING_BYTES;
            for (long off = 0; off < bytes.byteSize(); off += chunk) {
                MemorySegment piece = bytes.asSlice(off, Math.min(chunk, bytes.byteSize() - off));
                ByteBuffer b;
                if (viewable) {
                    b = piece.asByteBuffer();
                } else {
                    if (staging == null) staging = ByteBuffer.allocateDirect(STAGING_BYTES);
                    staging.clear();
                    MemorySegment.ofBuffer(staging).copyFrom(piece);
                    b = staging.limit((int) piece.byteSize());
                }
                while (b.hasRemaining()) channel.write(b);
            }
            position += bytes.byteSize();
            progress.accept(position);
        }

        void padTo(long target) throws IOException {
            if (target > position) write(MemorySegment.ofArray(new byte[(int) (target - position)]));
        }
    }

    /** Magic, version, counts, metadata and tensor infos, in one heap buffer (megabytes for a 128k vocabulary). */
    private byte[] headerBytes() {
        HeaderBuffer b = new HeaderBuffer();
        b.u32(GgufFile.MAGIC).u32(VERSION).u64(tensors.size()).u64(metadata.size());
        for (Map.Entry<String, Entry> e : metadata.entrySet()) {
            b.string(e.getKey());
            b.u32(e.getValue().type.id());
            b.value(e.getValue().type, e.getValue().value);
        }
        long offset = 0;
        for (TensorEntry t : tensors) {
            offset = align(offset);
            b.string(t.name);
            b.u32(t.shape.length);
            for (long d : t.shape) b.u64(d);
            b.u32(t.type.ggmlId());
            b.u64(offset);
            offset += t.bytes;
        }
        return b.toArray();
    }

    /** A growable little-endian byte buffer. */
    private static final class HeaderBuffer {
        private ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        private ByteBuffer room(int bytes) {
            if (buf.remaining() < bytes) {
                ByteBuffer bigger = ByteBuffer.allocate(Math.max(buf.capacity() * 2, buf.position() + bytes)).order(ByteOrder.LITTLE_ENDIAN);
                buf.flip();
                bigger.put(buf);
                buf = bigger;
            }
            return buf;
        }

        HeaderBuffer u32(int v) { room(4).putInt(v); return this; }

        HeaderBuffer u64(long v) { room(8).putLong(v); return this; }

        void string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            room(8 + bytes.length).putLong(bytes.length).put(bytes);
        }

        void value(GgufValueType type, Object v) {
            switch (type) {
                case UINT8, INT8 -> room(1).put((byte) ((Number) v).longValue());
                case UINT16, INT16 -> room(2).putShort((short) ((Number) v).longValue());
                case UINT32, INT32 -> room(4).putInt((int) ((Number) v).longValue());
                case UINT64, INT64 -> room(8).putLong(((Number) v).longValue());
                case FLOAT32 -> room(4).putFloat(((Number) v).floatValue());
                case FLOAT64 -> room(8).putDouble(((Number) v).doubleValue());
                case BOOL -> room(1).put((byte) ((Boolean) v ? 1 : 0));
                case STRING -> string((String) v);
                case ARRAY -> array((ArrayValue) v);
            }
        }

        private void array(ArrayValue a) {
            u32(a.elementType().id());
            u64(a.length());
            switch (a.elements()) {
                case int[] xs -> { for (int x : xs) value(a.elementType(), x); }
                case long[] xs -> { for (long x : xs) value(a.elementType(), x); }
                case float[] xs -> { for (float x : xs) room(4).putFloat(x); }
                case double[] xs -> { for (double x : xs) room(8).putDouble(x); }
                case boolean[] xs -> { for (boolean x : xs) room(1).put((byte) (x ? 1 : 0)); }
                case String[] xs -> { for (String x : xs) string(x); }
                case ArrayValue[] xs -> { for (ArrayValue x : xs) array(x); }
                default -> throw new AssertionError(a.elements().getClass());
            }
        }

        byte[] toArray() { return Arrays.copyOf(buf.array(), buf.position()); }
    }
}
