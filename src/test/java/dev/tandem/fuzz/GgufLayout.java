package dev.tandem.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Where each field of a valid GGUF header lies: what the structured mutator aims at. Read independently of
 * {@code GgufFile} (a second reader of the format, so that a bug in the one under test cannot hide its own
 * fields from the fuzzer).
 *
 * @param fields  every count, length, type id, scalar value, dimension and offset, in file order
 * @param values  each key/value pair's value region (type id included), for splicing in other values
 * @param headerEnd end of the tensor infos (the data section starts at the next alignment boundary)
 */
record GgufLayout(List<Field> fields, List<Region> values, int headerEnd) {

    enum Kind { TENSOR_COUNT, KEY_COUNT, STRING_LENGTH, VALUE_TYPE, ARRAY_TYPE, ARRAY_COUNT, SCALAR, DIM_COUNT, DIM, TENSOR_TYPE, TENSOR_OFFSET }

    /** A field of {@code width} bytes at {@code offset}; {@code where} names it for a mutation's description. */
    record Field(Kind kind, int offset, int width, String where) {}

    /** Bytes {@code [start, end)} hold the value of {@code key}, starting with its type id. */
    record Region(String key, int start, int end) {}

    private static final int[] SCALAR_SIZE = {1, 1, 2, 2, 4, 4, 4, 1, -1, -1, 8, 8, 8};

    static GgufLayout of(byte[] file) {
        ByteBuffer b = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        List<Field> fields = new ArrayList<>();
        List<Region> values = new ArrayList<>();
        b.position(8);
        fields.add(new Field(Kind.TENSOR_COUNT, 8, 8, "tensor count"));
        long tensors = b.getLong();
        fields.add(new Field(Kind.KEY_COUNT, 16, 8, "key count"));
        long keys = b.getLong();
        for (long i = 0; i < keys; i++) {
            String key = string(b, fields, "key #" + i);
            int start = b.position();
            fields.add(new Field(Kind.VALUE_TYPE, start, 4, "type of " + key));
            value(b, b.getInt(), fields, key);
            values.add(new Region(key, start, b.position()));
        }
        for (long i = 0; i < tensors; i++) {
            String name = string(b, fields, "tensor #" + i);
            fields.add(new Field(Kind.DIM_COUNT, b.position(), 4, "dimensions of " + name));
            int dims = b.getInt();
            for (int d = 0; d < dims; d++) {
                fields.add(new Field(Kind.DIM, b.position(), 8, "dimension " + d + " of " + name));
                b.getLong();
            }
            fields.add(new Field(Kind.TENSOR_TYPE, b.position(), 4, "type of " + name));
            b.getInt();
            fields.add(new Field(Kind.TENSOR_OFFSET, b.position(), 8, "offset of " + name));
            b.getLong();
        }
        return new GgufLayout(List.copyOf(fields), List.copyOf(values), b.position());
    }

    private static String string(ByteBuffer b, List<Field> fields, String where) {
        fields.add(new Field(Kind.STRING_LENGTH, b.position(), 8, "length of " + where));
        int n = (int) b.getLong();
        byte[] s = new byte[n];
        b.get(s);
        return new String(s, java.nio.charset.StandardCharsets.UTF_8);
    }

    private static void value(ByteBuffer b, int type, List<Field> fields, String key) {
        if (type == 8) {
            string(b, fields, "value of " + key);
        } else if (type == 9) {
            fields.add(new Field(Kind.ARRAY_TYPE, b.position(), 4, "element type of " + key));
            int elementType = b.getInt();
            fields.add(new Field(Kind.ARRAY_COUNT, b.position(), 8, "length of " + key));
            long n = b.getLong();
            // Only the first elements' fields are listed: a 4,096-token array would drown every other field.
            for (long i = 0; i < n; i++) {
                List<Field> sink = i < 4 ? fields : new ArrayList<>();
                value(b, elementType, sink, key + "[" + i + "]");
            }
        } else {
            fields.add(new Field(Kind.SCALAR, b.position(), SCALAR_SIZE[type], "value of " + key));
            b.position(b.position() + SCALAR_SIZE[type]);
        }
    }
}
