package dev.tandem.runtime;

/** Element type of K/V cache storage. F32 exists on every backend. */
public enum KvType {
    F32(4), F16(2), BF16(2);

    private final int bytes;

    KvType(int bytes) { this.bytes = bytes; }

    public int bytes() { return bytes; }

    public static KvType parse(String s) {
        for (KvType t : values()) if (t.name().equalsIgnoreCase(s.trim())) return t;
        throw new IllegalArgumentException("unknown K/V cache type '" + s + "' (known: f32, f16, bf16)");
    }
}
