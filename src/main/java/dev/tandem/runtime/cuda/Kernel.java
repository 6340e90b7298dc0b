package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;
import dev.tandem.runtime.KvType;

import java.util.List;

/**
 * The kernels of {@code kernels/*.cu}: their names and argument lists, the one description both the fatbin
 * (CUDA function {@code name()}) and the host-emulation library (C entry point {@code "tandem_" + name()}) follow.
 *
 * <p>Pointer arguments are device addresses: native {@link java.lang.foreign.MemorySegment}s on the host
 * emulation. The launch geometry each kernel expects comes from {@link LaunchGeometry}.
 */
public enum Kernel {
    MATVEC_F32("matvec_f32", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    MATVEC_F16("matvec_f16", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    MATVEC_BF16("matvec_bf16", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    MATVEC_Q8_0("matvec_q8_0", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    MATVEC_Q4_0("matvec_q4_0", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    MATVEC_Q4_K("matvec_q4_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    MATVEC_Q5_K("matvec_q5_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    MATVEC_Q6_K("matvec_q6_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    EMBEDDING_F32("embedding_f32", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    EMBEDDING_F16("embedding_f16", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    EMBEDDING_BF16("embedding_bf16", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    EMBEDDING_Q8_0("embedding_q8_0", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    EMBEDDING_Q4_0("embedding_q4_0", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    EMBEDDING_Q4_K("embedding_q4_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    EMBEDDING_Q5_K("embedding_q5_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    EMBEDDING_Q6_K("embedding_q6_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    /** (x, weight, out, K, eps) */
    RMSNORM("rmsnorm", Arg.P, Arg.P, Arg.P, Arg.I, Arg.F),
    /** (residual, delta, weight, out, K, eps) */
    RMSNORM_RESIDUAL("rmsnorm_residual", Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.F),
    /** (x, positions, factors or NULL, R, heads, headDim, rotDim, base, neox) */
    ROPE("rope", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.I),
    /** (gate, up, out, n) */
    SWIGLU("swiglu", Arg.P, Arg.P, Arg.P, Arg.I),
    /** (y, bias, N, n) */
    BIAS_ADD("bias_add", Arg.P, Arg.P, Arg.I, Arg.I),
    /** (q, kCache, vCache, blockTable, positions, partialOut, partialMax, partialSum, heads, kvHeads, headDim, blockSize, maxChunks, scale) */
    ATTENTION_PARTIAL("attention_partial", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P,
            Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F),
    /** {@link #ATTENTION_PARTIAL} over an F16 cache */
    ATTENTION_PARTIAL_F16("attention_partial_f16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P,
            Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F),
    /** {@link #ATTENTION_PARTIAL} over a BF16 cache */
    ATTENTION_PARTIAL_BF16("attention_partial_bf16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P,
            Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F),
    /** (partialOut, partialMax, partialSum, positions, out, heads, headDim, maxChunks) */
    ATTENTION_COMBINE("attention_combine", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    /** (k, v, kCache, vCache, blockTable, positions, kvHeads, headDim, blockSize) */
    KV_APPEND("kv_append", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    /** {@link #KV_APPEND} into an F16 cache (rounded to nearest even) */
    KV_APPEND_F16("kv_append_f16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    /** {@link #KV_APPEND} into a BF16 cache (rounded to nearest even) */
    KV_APPEND_BF16("kv_append_bf16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    /** (logits, out, N) */
    ARGMAX("argmax", Arg.P, Arg.P, Arg.P, Arg.I),
    /** (draft, verdict, k): verdict[0] = accepted length, given verdict[1..k+1] = the rows' argmax ids */
    ACCEPT_GREEDY("accept_greedy", Arg.P, Arg.P, Arg.I),
    /** (logits, probs, V, 1/temperature, topK, topP, minP, tops or null): each row's sampling distribution, and its top token's probability */
    SAMPLE_PROBS("sample_probs", Arg.P, Arg.P, Arg.I, Arg.F, Arg.I, Arg.F, Arg.F, Arg.P),
    /** (p, q, draft, meta, verdict, k, V): per block, the speculative rejection test and the next token */
    ACCEPT_SAMPLED("accept_sampled", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I),
    /** (x, out, n, bf16): F32 activations narrowed to F16 (bf16 = 0) or BF16 for the prefill GEMM */
    NARROW16("narrow16", Arg.P, Arg.P, Arg.I, Arg.I),
    /** (W, out, K, first, bf16): weight rows first.. decoded and narrowed to 16 bits, one row per block */
    DEQUANTIZE16_F32("dequantize16_f32", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    DEQUANTIZE16_F16("dequantize16_f16", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    DEQUANTIZE16_BF16("dequantize16_bf16", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    DEQUANTIZE16_Q8_0("dequantize16_q8_0", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    DEQUANTIZE16_Q4_0("dequantize16_q4_0", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    DEQUANTIZE16_Q4_K("dequantize16_q4_k", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    DEQUANTIZE16_Q5_K("dequantize16_q5_k", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I),
    DEQUANTIZE16_Q6_K("dequantize16_q6_k", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);

    /** A kernel argument's C type: pointer, int, float. */
    public enum Arg { P, I, F }

    private final String cudaName;
    private final List<Arg> args;

    Kernel(String cudaName, Arg... args) {
        this.cudaName = cudaName;
        this.args = List.of(args);
    }

    /** The kernel's name in the fatbin ({@code extern "C"}, so unmangled). */
    public String cudaName() { return cudaName; }

    /** The host-emulation library's entry point: {@code int tandem_<name>(gx, gy, gz, bx, by, bz, shared, args...)}. */
    public String hostSymbol() { return "tandem_" + cudaName; }

    public List<Arg> args() { return args; }

    /** (W, x, y, K, N, R) for weights of {@code type}. */
    public static Kernel matvec(TensorType type) {
        return switch (type) {
            case F32 -> MATVEC_F32;
            case F16 -> MATVEC_F16;
            case BF16 -> MATVEC_BF16;
            case Q8_0 -> MATVEC_Q8_0;
            case Q4_0 -> MATVEC_Q4_0;
            case Q4_K -> MATVEC_Q4_K;
            case Q5_K -> MATVEC_Q5_K;
            case Q6_K -> MATVEC_Q6_K;
            default -> throw new UnsupportedOperationException("no CUDA matvec kernel for " + type + " weights yet");
        };
    }

    /** (W, tokens, out, K, N) for an embedding table of {@code type}. */
    public static Kernel embedding(TensorType type) {
        return switch (type) {
            case F32 -> EMBEDDING_F32;
            case F16 -> EMBEDDING_F16;
            case BF16 -> EMBEDDING_BF16;
            case Q8_0 -> EMBEDDING_Q8_0;
            case Q4_0 -> EMBEDDING_Q4_0;
            case Q4_K -> EMBEDDING_Q4_K;
            case Q5_K -> EMBEDDING_Q5_K;
            case Q6_K -> EMBEDDING_Q6_K;
            default -> throw new UnsupportedOperationException("no CUDA embedding kernel for " + type + " weights yet");
        };
    }

    /** (W, out, K, first, bf16) for weights of {@code type}. */
    public static Kernel dequantize16(TensorType type) {
        return switch (type) {
            case F32 -> DEQUANTIZE16_F32;
            case F16 -> DEQUANTIZE16_F16;
            case BF16 -> DEQUANTIZE16_BF16;
            case Q8_0 -> DEQUANTIZE16_Q8_0;
            case Q4_0 -> DEQUANTIZE16_Q4_0;
            case Q4_K -> DEQUANTIZE16_Q4_K;
            case Q5_K -> DEQUANTIZE16_Q5_K;
            case Q6_K -> DEQUANTIZE16_Q6_K;
            default -> throw new UnsupportedOperationException("no CUDA dequantize16 kernel for " + type + " weights yet");
        };
    }

    /** (q, kCache, vCache, ...) for a K/V cache of {@code type}. */
    public static Kernel attentionPartial(KvType type) {
        return switch (type) {
            case F32 -> ATTENTION_PARTIAL;
            case F16 -> ATTENTION_PARTIAL_F16;
            case BF16 -> ATTENTION_PARTIAL_BF16;
        };
    }

    /** (k, v, kCache, vCache, ...) for a K/V cache of {@code type}. */
    public static Kernel kvAppend(KvType type) {
        return switch (type) {
            case F32 -> KV_APPEND;
            case F16 -> KV_APPEND_F16;
            case BF16 -> KV_APPEND_BF16;
        };
    }
}
