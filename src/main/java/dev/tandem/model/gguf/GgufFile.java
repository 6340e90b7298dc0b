package dev.tandem.model.gguf;

import dev.tandem.model.ModelFormatException;
import dev.tandem.model.ModelLimits;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.ArrayList;

/**
 * A GGUF file (versions 2 and 3), mapped read-only into memory. Metadata is parsed eagerly into Java values;
 * tensor data stays in the mapping and is exposed as {@link Tensor} views, so files far larger than 2 GB and
 * larger than the heap work.
 *
 * <p>Metadata values: {@code Integer} (u8, i8, u16, i16, i32), {@code Long} (u32, u64, i64), {@code Float},
 * {@code Double}, {@code Boolean}, {@code String}; arrays as {@code int[]} (u8..i32), {@code long[]} (u32, u64,
 * i64), {@code float[]}, {@code double[]}, {@code boolean[]}, {@code String[]}, and {@code Object[]} for arrays
 * of arrays.
 */
public final class GgufFile implements AutoCloseable {
    static final int MAGIC = 0x46554747; // "GGUF" read as a little-endian int
    static final int DEFAULT_ALIGNMENT = 32;
    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path path;
    private final Arena arena;
    private final MemorySegment file;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, Tensor> tensors;
    private final long dataOffset;

    private GgufFile(Path path, Arena arena, MemorySegment file) {
        this.path = path;
        this.arena = arena;
        this.file = file;
        Reader in = new Reader(0);
        if (file.byteSize() < 24) throw error("truncated file: " + file.byteSize() + " bytes is too short for a GGUF header");
        int magic = in.u32();
        if (magic != MAGIC) {
            throw error(String.format("not a GGUF file (bad magic 0x%08x, expected 'GGUF')", magic));
        }
        this.version = in.u32();
        if (version == 1) throw error("unsupported GGUF version 1 (only versions 2 and 3 are supported)");
        if (version != 2 && version != 3) {
            if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3) {
                throw error("big-endian GGUF files are not supported");
            }
            throw error("unsupported GGUF version " + Integer.toUnsignedString(version) + " (only versions 2 and 3 are supported)");
        }
        long tensorCount = in.u64();
        long kvCount = in.u64();
        // A tensor info takes at least 32 bytes, a key/value pair at least 13: a count beyond what the file can
        // hold is refused before the loops below allocate anything for it.
        if (tensorCount < 0 || tensorCount > ModelLimits.MAX_TENSORS || tensorCount > file.byteSize() / 32) {
            throw error("the header declares " + Long.toUnsignedString(tensorCount) + " tensors; allowed: at most "
                    + Math.min(ModelLimits.MAX_TENSORS, file.byteSize() / 32) + " (the limit, or what " + file.byteSize() + " bytes can hold)");
        }
        if (kvCount < 0 || kvCount > file.byteSize() / 13) {
            throw error("the header declares " + Long.toUnsignedString(kvCount) + " metadata keys; allowed: at most "
                    + file.byteSize() / 13 + " (what " + file.byteSize() + " bytes can hold)");
        }

        Map<String, Object> kv = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = in.string("metadata key #" + i);
            int typeId = in.u32();
            GgufValueType type = GgufValueType.fromId(typeId);
            if (type == null) throw error("metadata key '" + key + "' has unknown value type " + Integer.toUnsignedString(typeId));
            if (kv.put(key, in.value(type, key)) != null) throw error("metadata key '" + key + "' appears twice");
        }
        this.metadata = Collections.unmodifiableMap(kv);

        record Info(String name, long[] shape, TensorType type, long offset, long bytes) {}
        List<Info> infos = new ArrayList<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = in.string("tensor name #" + i);
            int dims = in.u32();
            if (dims < 1 || dims > 4) {
                throw error("tensor '" + name + "' has " + Integer.toUnsignedString(dims) + " dimensions; allowed: 1 to 4");
            }
            long[] shape = new long[dims];
            for (int d = 0; d < dims; d++) shape[d] = in.u64();
            int typeId = in.u32();
            TensorType type = TensorType.fromGgmlId(typeId);
            if (type == null) throw error("tensor '" + name + "' has unknown or unsupported tensor type " + Integer.toUnsignedString(typeId));
            long offset = in.u64();
            infos.add(new Info(name, shape, type, offset, ModelLimits.tensorBytes(path, name, shape, type)));
        }
        long alignment = DEFAULT_ALIGNMENT;
        Object a = kv.get("general.alignment");
        if (a != null) {
            if (!(a instanceof Integer || a instanceof Long) || ((Number) a).longValue() <= 0
                    || Long.bitCount(((Number) a).longValue()) != 1 || ((Number) a).longValue() > ModelLimits.MAX_ALIGNMENT) {
                throw error("'general.alignment' is " + a + "; allowed: a power of two from 1 to " + ModelLimits.MAX_ALIGNMENT);
            }
            alignment = ((Number) a).longValue();
        }
        this.dataOffset = alignUp(in.pos, alignment);
        List<ModelLimits.Extent> extents = new ArrayList<>();
        for (Info info : infos) {
            // Offsets are relative to the data section; compared before adding, so that nothing wraps near 2^63.
            if (info.offset < 0 || info.offset > file.byteSize() - dataOffset) {
                throw error("tensor '" + info.name + "' data offset " + Long.toUnsignedString(info.offset)
                        + " lies past the end of the file (data section: " + Math.max(0, file.byteSize() - dataOffset) + " bytes)");
            }
            if (info.offset % alignment != 0) {
                throw error("tensor '" + info.name + "' data offset " + info.offset + " is not a multiple of the alignment " + alignment);
            }
            extents.add(new ModelLimits.Extent(info.name, dataOffset + info.offset, info.bytes));
        }
        ModelLimits.checkExtents(path, extents, dataOffset, file.byteSize());
        Map<String, Tensor> ts = new LinkedHashMap<>();
        for (Info info : infos) {
            if (ts.put(info.name, new Tensor(info.name, info.type, info.shape, file.asSlice(dataOffset + info.offset, info.bytes))) != null) {
                throw error("tensor '" + info.name + "' appears twice");
            }
        }
        this.tensors = Collections.unmodifiableMap(ts);
    }

    /** Maps and parses {@code path}. */
    public static GgufFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment seg = ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena);
            return new GgufFile(path, arena, seg);
        } catch (NoSuchFileException e) {
            arena.close();
            throw new ModelFormatException(path, "file not found");
        } catch (IOException e) {
            arena.close();
            throw new ModelFormatException(path, "cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    static long alignUp(long x, long alignment) {
        return (x + alignment - 1) / alignment * alignment;
    }

    public Path path() { return path; }

    public int version() { return version; }

    /** Offset of the tensor data section. */
    public long dataOffset() { return dataOffset; }

    public long fileSize() { return file.byteSize(); }

    public Map<String, Object> metadata() { return metadata; }

    public boolean has(String key) { return metadata.containsKey(key); }

    public Optional<Object> find(String key) { return Optional.ofNullable(metadata.get(key)); }

    private Object require(String key) {
        Object v = metadata.get(key);
        if (v == null) throw error("missing required metadata key '" + key + "'");
        return v;
    }

    private <T> T typed(String key, Class<T> type, String expected) {
        Object v = require(key);
        if (!type.isInstance(v)) throw error("metadata key '" + key + "' should be " + expected + ", found " + describe(v));
        return type.cast(v);
    }

    public String getString(String key) { return typed(key, String.class, "a string"); }

    public long getLong(String key) { return typed(key, Number.class, "an integer").longValue(); }

    public int getInt(String key) {
        long v = getLong(key);
        if (v != (int) v) throw error("metadata key '" + key + "' value " + v + " is out of range");
        return (int) v;
    }

    public float getFloat(String key) { return typed(key, Number.class, "a number").floatValue(); }

    public boolean getBoolean(String key) { return typed(key, Boolean.class, "a boolean"); }

    public String[] getStringArray(String key) { return typed(key, String[].class, "an array of strings"); }

    public float[] getFloatArray(String key) { return typed(key, float[].class, "an array of float32"); }

    public int[] getIntArray(String key) { return typed(key, int[].class, "an array of 32-bit integers"); }

    public Optional<String> findString(String key) { return metadata.containsKey(key) ? Optional.of(getString(key)) : Optional.empty(); }

    public Optional<Long> findLong(String key) { return metadata.containsKey(key) ? Optional.of(getLong(key)) : Optional.empty(); }

    public Optional<Float> findFloat(String key) { return metadata.containsKey(key) ? Optional.of(getFloat(key)) : Optional.empty(); }

    public Optional<Boolean> findBoolean(String key) { return metadata.containsKey(key) ? Optional.of(getBoolean(key)) : Optional.empty(); }

    public Map<String, Tensor> tensors() { return tensors; }

    public Optional<Tensor> findTensor(String name) { return Optional.ofNullable(tensors.get(name)); }

    public Tensor tensor(String name) {
        Tensor t = tensors.get(name);
        if (t == null) throw error("missing tensor '" + name + "'");
        return t;
    }

    private static String describe(Object v) {
        if (v == null) return "nothing";
        if (v.getClass().isArray()) return "an array (" + v.getClass().getComponentType().getSimpleName() + ")";
        return v.getClass().getSimpleName().toLowerCase() + " " + v;
    }

    ModelFormatException error(String message) {
        return new ModelFormatException(path, message);
    }

    @Override
    public void close() {
        arena.close();
    }

    /**
     * Sequential little-endian reader over the header, with bounds checks that name what was being read. Every
     * length is checked against the bytes left in the file and against {@link ModelLimits}' metadata budgets
     * before anything is allocated for it; arrays of arrays are read to a bounded depth.
     */
    private final class Reader {
        long pos;
        private long stringBytes, arrayElements;

        Reader(long pos) { this.pos = pos; }

        private void need(long bytes, String what) {
            if (bytes < 0 || bytes > file.byteSize() - pos) {
                throw error("truncated file: " + what + " needs " + Long.toUnsignedString(bytes) + " bytes at offset " + pos
                        + " but the file has " + file.byteSize());
            }
        }

        int u32() { need(4, "a 32-bit value"); int v = file.get(U32, pos); pos += 4; return v; }

        long u64() { need(8, "a 64-bit value"); long v = file.get(U64, pos); pos += 8; return v; }

        String string(String what) {
            need(8, what);
            long len = file.get(U64, pos);
            pos += 8;
            need(len, what);
            if (len > ModelLimits.MAX_METADATA_STRING_BYTES - stringBytes) {
                throw error(what + " is a string of " + len + " bytes; allowed: " + ModelLimits.MAX_METADATA_STRING_BYTES
                        + " bytes of strings in all (" + stringBytes + " read before it)");
            }
            stringBytes += len;
            byte[] bytes = file.asSlice(pos, len).toArray(ValueLayout.JAVA_BYTE);
            pos += len;
            return new String(bytes, StandardCharsets.UTF_8);
        }

        Object value(GgufValueType type, String key) {
            if (type == GgufValueType.ARRAY) return array(key, 1);
            if (type.size > 0) need(type.size, "value of '" + key + "'");
            return switch (type) {
                case UINT8 -> Byte.toUnsignedInt(file.get(ValueLayout.JAVA_BYTE, pos++));
                case INT8 -> (int) file.get(ValueLayout.JAVA_BYTE, pos++);
                case UINT16 -> { int v = Short.toUnsignedInt(file.get(U16, pos)); pos += 2; yield v; }
                case INT16 -> { int v = file.get(U16, pos); pos += 2; yield v; }
                case UINT32 -> { long v = Integer.toUnsignedLong(file.get(U32, pos)); pos += 4; yield v; }
                case INT32 -> { int v = file.get(U32, pos); pos += 4; yield v; }
                case FLOAT32 -> { float v = file.get(F32, pos); pos += 4; yield v; }
                case BOOL -> file.get(ValueLayout.JAVA_BYTE, pos++) != 0;
                case UINT64, INT64 -> { long v = file.get(U64, pos); pos += 8; yield v; }
                case FLOAT64 -> { double v = file.get(F64, pos); pos += 8; yield v; }
                case STRING -> string("value of '" + key + "'");
                case ARRAY -> throw new AssertionError(type);
            };
        }

        private Object array(String key, int depth) {
            if (depth > ModelLimits.MAX_ARRAY_NESTING) {
                throw error("metadata array '" + key + "' nests arrays " + depth + " deep; allowed: " + ModelLimits.MAX_ARRAY_NESTING);
            }
            int typeId = u32();
            GgufValueType type = GgufValueType.fromId(typeId);
            if (type == null) throw error("metadata array '" + key + "' has unknown element type " + Integer.toUnsignedString(typeId));
            long n = u64();
            // Each element takes at least one byte (8 for a string or an array): a count the rest of the file
            // cannot hold is corrupt, whatever its size; a count that fits is still held to the element budget.
            long minBytes = type.size > 0 ? type.size : type == GgufValueType.STRING ? 8 : 12;
            if (n < 0 || n > (file.byteSize() - pos) / minBytes) {
                throw error("metadata array '" + key + "' declares " + Long.toUnsignedString(n) + " elements of " + type
                        + "; the " + (file.byteSize() - pos) + " bytes left in the file hold at most " + (file.byteSize() - pos) / minBytes);
            }
            if (n > ModelLimits.MAX_METADATA_ARRAY_ELEMENTS - arrayElements) {
                throw error("metadata array '" + key + "' has " + n + " elements; allowed: " + ModelLimits.MAX_METADATA_ARRAY_ELEMENTS
                        + " array elements in all (" + arrayElements + " read before it)");
            }
            arrayElements += n;
            int count = (int) n;
            switch (type) {
                case UINT8, INT8, UINT16, INT16, INT32 -> {
                    int[] out = new int[count];
                    for (int i = 0; i < count; i++) out[i] = ((Number) value(type, key)).intValue();
                    return out;
                }
                case UINT32, UINT64, INT64 -> {
                    long[] out = new long[count];
                    for (int i = 0; i < count; i++) out[i] = ((Number) value(type, key)).longValue();
                    return out;
                }
                case FLOAT32 -> {
                    float[] out = new float[count];
                    for (int i = 0; i < count; i++) { out[i] = file.get(F32, pos); pos += 4; }
                    return out;
                }
                case FLOAT64 -> {
                    double[] out = new double[count];
                    for (int i = 0; i < count; i++) { out[i] = file.get(F64, pos); pos += 8; }
                    return out;
                }
                case BOOL -> {
                    boolean[] out = new boolean[count];
                    for (int i = 0; i < count; i++) out[i] = file.get(ValueLayout.JAVA_BYTE, pos++) != 0;
                    return out;
                }
                case STRING -> {
                    String[] out = new String[count];
                    for (int i = 0; i < count; i++) out[i] = string("element " + i + " of '" + key + "'");
                    return out;
                }
                case ARRAY -> {
                    Object[] out = new Object[count];
                    for (int i = 0; i < count; i++) out[i] = array(key + "[" + i + "]", depth + 1);
                    return out;
                }
            }
            throw new AssertionError(type);
        }
    }
}
