package dev.tandem.fuzz;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A structured mutator of GGUF files: it knows where counts, lengths, type ids, scalar values, dimensions and
 * offsets lie ({@link GgufLayout}) and sets them to boundary values (0, −1, 2^31, 2^32 + 3, 2^63 − 1, the file
 * size, NaN), retypes and nests values, makes tensors overlap, duplicates keys, flips bits and truncates. A case
 * is a pure function of the seed file and one {@code long}: its description says what it did, and the same
 * seed rebuilds it (the regression corpus stores only seeds).
 */
final class GgufMutator {
    /** A mutated file and what was done to it. */
    record Case(byte[] bytes, String description) {}

    private final byte[] seed;
    private final GgufLayout layout;
    private final int dataStart;

    GgufMutator(byte[] seed) {
        this.seed = seed;
        this.layout = GgufLayout.of(seed);
        this.dataStart = (layout.headerEnd() + 31) / 32 * 32;
    }

    Case mutate(long caseSeed) {
        SplittableRandom r = new SplittableRandom(caseSeed);
        int n = 1 + (r.nextInt(4) == 0 ? r.nextInt(3) : 0);    // mostly one mutation, sometimes two or three
        byte[] bytes = seed;
        StringBuilder what = new StringBuilder();
        // The layout holds for the seed's byte positions: once a mutation moved bytes, later ones would miss.
        for (int i = 0; i < n && bytes.length == seed.length; i++) {
            Case c = once(bytes, r);
            bytes = c.bytes;
            what.append(i == 0 ? "" : "; ").append(c.description);
        }
        return new Case(bytes, what.toString());
    }

    private Case once(byte[] in, SplittableRandom r) {
        int op = r.nextInt(100);
        if (op < 45) return setField(in, r);
        if (op < 55) return truncate(in, r);
        if (op < 62) return retype(in, r);
        if (op < 68) return nest(in, r);
        if (op < 80) return flipBits(in, r);
        if (op < 88) return overlap(in, r);
        if (op < 94) return duplicateKey(in, r);
        return setNamedScalar(in, r);
    }

    // ---- fields ------------------------------------------------------------------------------------------------

    private Case setField(byte[] in, SplittableRandom r) {
        GgufLayout.Field f = layout.fields().get(r.nextInt(layout.fields().size()));
        long original = read(in, f.offset(), f.width());
        long v = interesting(r, f.width(), original, in.length);
        return new Case(write(in, f.offset(), f.width(), v), f.where() + " := " + v + " (was " + original + ")");
    }

    /** The scalar of a hyperparameter key (the ones that size allocations and loops) set to a boundary value. */
    private Case setNamedScalar(byte[] in, SplittableRandom r) {
        List<GgufLayout.Field> scalars = layout.fields().stream()
                .filter(f -> f.kind() == GgufLayout.Kind.SCALAR && f.where().contains(".")).toList();
        GgufLayout.Field f = scalars.get(r.nextInt(scalars.size()));
        long v = interesting(r, f.width(), read(in, f.offset(), f.width()), in.length);
        if (f.width() == 4 && r.nextInt(3) == 0) v = FLOAT_BITS[r.nextInt(FLOAT_BITS.length)];
        return new Case(write(in, f.offset(), f.width(), v), f.where() + " := " + v);
    }

    private static final long[] FLOAT_BITS = {0x7FC00000L, 0x7F800000L, 0xFF800000L, 0, 0x80000000L, 0x00000001L, 0x7F7FFFFFL};

    static long interesting(SplittableRandom r, int width, long original, long fileSize) {
        long[] common = {0, 1, -1, 2, 3, 7, 8, 32, 64, 255, 4096, Integer.MAX_VALUE, 1L << 31, 0xFFFF_FFFFL, 1L << 32, (1L << 32) + 3,
                Long.MAX_VALUE, Long.MIN_VALUE, Long.MAX_VALUE - 15, fileSize, fileSize + 1, original + 1, original - 1,
                original * 2, original + 32, original ^ (1L << r.nextInt(width * 8))};
        long v = r.nextInt(8) == 0 ? r.nextLong() : common[r.nextInt(common.length)];
        return width == 8 ? v : v & ((1L << (width * 8)) - 1);
    }

    // ---- structure ---------------------------------------------------------------------------------------------

    private Case truncate(byte[] in, SplittableRandom r) {
        int at = r.nextBoolean() ? r.nextInt(Math.min(in.length, layout.headerEnd() + 64)) : r.nextInt(in.length);
        return new Case(Arrays.copyOf(in, at), "truncated to " + at + " bytes");
    }

    /** A key's value replaced by a value of another type (the data section kept where it was). */
    private Case retype(byte[] in, SplittableRandom r) {
        GgufLayout.Region v = layout.values().get(r.nextInt(layout.values().size()));
        ByteBuffer b = le(64);
        String what;
        switch (r.nextInt(6)) {
            case 0 -> { b.putInt(8); putString(b, "1024"); what = "the string \"1024\""; }
            case 1 -> { b.putInt(10).putLong(r.nextBoolean() ? -1L : (1L << 32) + 4096); what = "a UINT64"; }
            case 2 -> { b.putInt(6).putFloat(Float.NaN); what = "FLOAT32 NaN"; }
            case 3 -> { b.putInt(9).putInt(8).putLong(0); what = "an empty string array"; }
            case 4 -> { b.putInt(7).put((byte) 1); what = "a BOOL"; }
            default -> { b.putInt(r.nextInt(20)).putLong(r.nextLong()); what = "a value of a random type id"; }
        }
        return new Case(splice(in, v.start(), v.end(), Arrays.copyOf(b.array(), b.position())), "value of " + v.key() + " := " + what);
    }

    /** A key's value replaced by arrays nested {@code depth} deep. */
    private Case nest(byte[] in, SplittableRandom r) {
        int[] depths = {1, 2, 8, 9, 64, 3000, 20000};
        int depth = depths[r.nextInt(depths.length)];
        GgufLayout.Region v = layout.values().get(r.nextInt(layout.values().size()));
        ByteBuffer b = le(4 + depth * 12 + 12);
        b.putInt(9);
        for (int i = 1; i < depth; i++) b.putInt(9).putLong(1);
        b.putInt(0).putLong(0);
        return new Case(splice(in, v.start(), v.end(), b.array()), "value of " + v.key() + " := arrays nested " + depth + " deep");
    }

    private Case flipBits(byte[] in, SplittableRandom r) {
        byte[] out = in.clone();
        int k = 1 + r.nextInt(8);
        for (int i = 0; i < k; i++) {
            int at = r.nextInt(Math.min(out.length, layout.headerEnd()));
            out[at] ^= (byte) (1 << r.nextInt(8));
        }
        return new Case(out, k + " bit flips in the header");
    }

    /** One tensor's offset set to another's, or to another's plus a few bytes. */
    private Case overlap(byte[] in, SplittableRandom r) {
        List<GgufLayout.Field> offsets = layout.fields().stream().filter(f -> f.kind() == GgufLayout.Kind.TENSOR_OFFSET).toList();
        GgufLayout.Field a = offsets.get(r.nextInt(offsets.size())), b = offsets.get(r.nextInt(offsets.size()));
        long v = read(in, b.offset(), 8) + (r.nextBoolean() ? 0 : 32L * r.nextInt(4));
        return new Case(write(in, a.offset(), 8, v), a.where() + " := " + b.where() + " (" + v + ")");
    }

    private Case duplicateKey(byte[] in, SplittableRandom r) {
        int i = r.nextInt(layout.values().size());
        GgufLayout.Region v = layout.values().get(i);
        byte[] key = v.key().getBytes(StandardCharsets.UTF_8);
        int keyStart = v.start() - 8 - key.length;
        byte[] pair = Arrays.copyOfRange(in, keyStart, v.end());
        byte[] out = splice(in, v.end(), v.end(), pair);
        long keys = read(out, 16, 8);
        return new Case(write(out, 16, 8, keys + 1), "key " + v.key() + " twice");
    }

    // ---- bytes -------------------------------------------------------------------------------------------------

    /**
     * Replaces header bytes {@code [from, to)} with {@code with} and moves the data section to the next 32-byte
     * boundary after the new header, so that tensor offsets still point at their data.
     */
    private byte[] splice(byte[] in, int from, int to, byte[] with) {
        int headerEnd = layout.headerEnd() - (to - from) + with.length;
        int newDataStart = (headerEnd + 31) / 32 * 32;
        if (in.length < dataStart) {            // already truncated: splice the bytes only
            ByteArrayOutputStream o = new ByteArrayOutputStream();
            o.write(in, 0, Math.min(from, in.length));
            o.writeBytes(with);
            if (to < in.length) o.write(in, to, in.length - to);
            return o.toByteArray();
        }
        byte[] out = new byte[newDataStart + in.length - dataStart];
        System.arraycopy(in, 0, out, 0, from);
        System.arraycopy(with, 0, out, from, with.length);
        System.arraycopy(in, to, out, from + with.length, layout.headerEnd() - to);
        System.arraycopy(in, dataStart, out, newDataStart, in.length - dataStart);
        return out;
    }

    private static long read(byte[] in, int offset, int width) {
        if (offset + width > in.length) return 0;
        ByteBuffer b = ByteBuffer.wrap(in).order(ByteOrder.LITTLE_ENDIAN);
        return switch (width) {
            case 1 -> in[offset] & 0xFF;
            case 2 -> b.getShort(offset) & 0xFFFF;
            case 4 -> b.getInt(offset) & 0xFFFF_FFFFL;
            default -> b.getLong(offset);
        };
    }

    private static byte[] write(byte[] in, int offset, int width, long v) {
        byte[] out = in.clone();
        if (offset + width > out.length) return out;
        ByteBuffer b = ByteBuffer.wrap(out).order(ByteOrder.LITTLE_ENDIAN);
        switch (width) {
            case 1 -> out[offset] = (byte) v;
            case 2 -> b.putShort(offset, (short) v);
            case 4 -> b.putInt(offset, (int) v);
            default -> b.putLong(offset, v);
        }
        return out;
    }

    private static ByteBuffer le(int size) { return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN); }

    private static void putString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        b.putLong(bytes.length).put(bytes);
    }
}
