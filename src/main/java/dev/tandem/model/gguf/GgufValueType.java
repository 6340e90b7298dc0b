package dev.tandem.model.gguf;

/** GGUF metadata value types, with their on-disk ids (gguf_type). */
public enum GgufValueType {
    UINT8(0, 1), INT8(1, 1), UINT16(2, 2), INT16(3, 2), UINT32(4, 4), INT32(5, 4), FLOAT32(6, 4), BOOL(7, 1),
    STRING(8, -1), ARRAY(9, -1), UINT64(10, 8), INT64(11, 8), FLOAT64(12, 8);

    final int id;
    /** Bytes of one value on disk, or -1 for variable-size types. */
    final int size;

    GgufValueType(int id, int size) {
        this.id = id;
        this.size = size;
    }

    public int id() { return id; }

    static GgufValueType fromId(int id) {
        for (GgufValueType t : values()) if (t.id == id) return t;
        return null;
    }
}
