package dev.tandem.forge;

import dev.tandem.model.TensorType;

/**
 * The element types a forged (or converted) model's weight matrices get. Vectors (norms, biases) always stay
 * F32. Every scheme but {@link #Q4_K_M} gives all matrices, the token embedding and the output head included,
 * one type.
 *
 * <p>{@code Q4_K_M} follows the rule of llama.cpp's {@code llama-quantize} for its Q4_K_M mix, reduced to the
 * tensors our architectures have: Q4_K for every matrix except
 * <ul>
 *   <li>the output head ({@code output.weight}, or {@code token_embd.weight} when the head is tied): Q6_K;</li>
 *   <li>{@code attn_v} and {@code ffn_down} of the layers where llama.cpp's {@code use_more_bits} holds —
 *       {@code i < L/8 || i >= 7L/8 || (i - L/8) % 3 == 2} with integer division: Q6_K.</li>
 * </ul>
 * (llama.cpp has further special cases for other architectures, very small layer counts and GQA factors; those
 * are not reproduced.)
 */
public enum ForgeType {
    F32(TensorType.F32, 0),
    F16(TensorType.F16, 1),
    BF16(TensorType.BF16, 32),
    Q8_0(TensorType.Q8_0, 7),
    Q4_0(TensorType.Q4_0, 2),
    Q4_K(TensorType.Q4_K, 14),
    Q5_K(TensorType.Q5_K, 16),
    Q6_K(TensorType.Q6_K, 18),
    Q4_K_M(TensorType.Q4_K, 15);

    private final TensorType base;
    private final int fileType;

    ForgeType(TensorType base, int fileType) {
        this.base = base;
        this.fileType = fileType;
    }

    /**
     * llama.cpp's {@code general.file_type} (llama_ftype) for this scheme; the single-K-type schemes are given
     * the "_S" ids (Q4_K_S 14, Q5_K_S 16), the nearest llama.cpp has.
     */
    public int fileType() { return fileType; }

    /** The block size every matrix row length must be a multiple of. */
    public int blockSize() { return this == Q4_K_M ? TensorType.Q6_K.blockSize() : base.blockSize(); }

    /**
     * The type of matrix {@code name} ({@code token_embd.weight}, {@code output.weight} or
     * {@code blk.N.xxx.weight}) in a model of {@code layers} layers.
     */
    public TensorType matrixType(String name, int layers, boolean tiedHead) {
        if (this != Q4_K_M) return base;
        if (name.equals("output.weight") || (tiedHead && name.equals("token_embd.weight"))) return TensorType.Q6_K;
        int layer = layerOf(name);
        if (layer >= 0 && (name.endsWith(".attn_v.weight") || name.endsWith(".ffn_down.weight")) && useMoreBits(layer, layers)) {
            return TensorType.Q6_K;
        }
        return TensorType.Q4_K;
    }

    /** llama.cpp's {@code use_more_bits}: the first and last eighth of the layers, and every third between. */
    static boolean useMoreBits(int layer, int layers) {
        return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
    }

    /** N of a {@code blk.N.} tensor name, or -1. */
    static int layerOf(String name) {
        if (!name.startsWith("blk.")) return -1;
        int dot = name.indexOf('.', 4);
        if (dot < 0) return -1;
        try {
            return Integer.parseInt(name.substring(4, dot));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Parses {@code f32}, {@code q8_0}, {@code q4_k_m}, ... (case-insensitive). */
    public static ForgeType parse(String name) {
        for (ForgeType t : values()) {
            if (t.name().equalsIgnoreCase(name.trim())) return t;
        }
        throw new IllegalArgumentException("unknown type '" + name + "' (known: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_m)");
    }

    @Override
    public String toString() { return name().toLowerCase(); }
}
