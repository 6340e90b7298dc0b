package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;
import dev.tandem.runtime.KvType;

import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The kernels of {@code kernels/*.cu}: their names and argument lists, the one description both the fatbin
 * (CUDA function {@code name()}) and the host-emulation library (C entry point {@code "tandem_" + name()}) follow.
 *
 * <p>Pointer arguments are device addresses: native {@link java.lang.foreign.MemorySegment}s on the host
 * emulation. The launch geometry each kernel expects comes from {@link LaunchGeometry}.
 */
public final class Kernel {
    /** A kernel argument's C type: pointer, int, float. */
    public enum Arg { P, I, F }

    private static final List<Kernel> ALL = new ArrayList<>();

    public static final Kernel EMBEDDING_F32 = fixed("embedding_f32", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    public static final Kernel EMBEDDING_F16 = fixed("embedding_f16", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    public static final Kernel EMBEDDING_BF16 = fixed("embedding_bf16", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    public static final Kernel EMBEDDING_Q8_0 = fixed("embedding_q8_0", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    public static final Kernel EMBEDDING_Q4_0 = fixed("embedding_q4_0", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    public static final Kernel EMBEDDING_Q4_K = fixed("embedding_q4_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    public static final Kernel EMBEDDING_Q5_K = fixed("embedding_q5_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    public static final Kernel EMBEDDING_Q6_K = fixed("embedding_q6_k", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    /** (x, weight, out, K, eps) */
    public static final Kernel RMSNORM = fixed("rmsnorm", Arg.P, Arg.P, Arg.P, Arg.I, Arg.F);
    /** (residual, delta, weight, out, K, eps) */
    public static final Kernel RMSNORM_RESIDUAL = fixed("rmsnorm_residual", Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.F);
    /** (x, positions, factors or NULL, R, heads, headDim, rotDim, base, neox) */
    public static final Kernel ROPE = fixed("rope", Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.I);
    /** (gate, up, out, n) */
    public static final Kernel SWIGLU = fixed("swiglu", Arg.P, Arg.P, Arg.P, Arg.I);
    /** (y, bias, N, n) */
    public static final Kernel BIAS_ADD = fixed("bias_add", Arg.P, Arg.P, Arg.I, Arg.I);
    /**
     * (q, kCache, vCache, blockTable, positions, partialOut, partialMax, partialSum, R, heads, kvHeads, headDim,
     * blockSize, maxChunks, scale, out, done): one block per (chunk, KV head) for every row and query head of its
     * group; the last block of a KV head merges its chunks into out = [R][heads][headDim] (done: kvHeads device
     * words, 0 between launches)
     */
    public static final Kernel ATTENTION_PARTIAL = fixed("attention_partial", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.P, Arg.P);
    /** {@link #ATTENTION_PARTIAL} over an F16 cache */
    public static final Kernel ATTENTION_PARTIAL_F16 = fixed("attention_partial_f16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.P, Arg.P);
    /** {@link #ATTENTION_PARTIAL} over a BF16 cache */
    public static final Kernel ATTENTION_PARTIAL_BF16 = fixed("attention_partial_bf16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.P, Arg.P);
    /** (k, v, kCache, vCache, blockTable, positions, kvHeads, headDim, blockSize) */
    public static final Kernel KV_APPEND = fixed("kv_append", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    /** {@link #KV_APPEND} into an F16 cache (rounded to nearest even) */
    public static final Kernel KV_APPEND_F16 = fixed("kv_append_f16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    /** {@link #KV_APPEND} into a BF16 cache (rounded to nearest even) */
    public static final Kernel KV_APPEND_BF16 = fixed("kv_append_bf16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    /** (q, k, v, kCache, vCache, blockTable, positions, factors or NULL, heads, kvHeads, headDim, rotDim, base, neox, blockSize): RoPE on q in place, rotated k and v into the cache */
    public static final Kernel ROPE_KV_APPEND = fixed("rope_kv_append", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.I, Arg.I);
    /** {@link #ROPE_KV_APPEND} into an F16 cache */
    public static final Kernel ROPE_KV_APPEND_F16 = fixed("rope_kv_append_f16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.I, Arg.I);
    /** {@link #ROPE_KV_APPEND} into a BF16 cache */
    public static final Kernel ROPE_KV_APPEND_BF16 = fixed("rope_kv_append_bf16", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.F, Arg.I, Arg.I);
    /** (logits, out, N) */
    public static final Kernel ARGMAX = fixed("argmax", Arg.P, Arg.P, Arg.P, Arg.I);
    /** (draft, verdict, k): verdict[0] = accepted length, given verdict[1..k+1] = the rows' argmax ids */
    public static final Kernel ACCEPT_GREEDY = fixed("accept_greedy", Arg.P, Arg.P, Arg.I);
    /** (logits, probs, V, 1/temperature, topK, topP, minP, tops or null): each row's sampling distribution, and its top token's probability */
    public static final Kernel SAMPLE_PROBS = fixed("sample_probs", Arg.P, Arg.P, Arg.I, Arg.F, Arg.I, Arg.F, Arg.F, Arg.P);
    /** (p, q, draft, meta, verdict, k, V): per block, the speculative rejection test and the next token */
    public static final Kernel ACCEPT_SAMPLED = fixed("accept_sampled", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I);
    /** (p, q, tokens, meta, verdict, V): per block one sequence of a batched verification, its k, rows and seed in meta[8b .. 8b+8) */
    public static final Kernel ACCEPT_SAMPLED_BATCH = fixed("accept_sampled_batch", Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I);
    /** (x, out, n, bf16): F32 activations narrowed to F16 (bf16 = 0) or BF16 for the prefill GEMM */
    public static final Kernel NARROW16 = fixed("narrow16", Arg.P, Arg.P, Arg.I, Arg.I);
    /** (W, out, K, first, bf16): weight rows first.. decoded and narrowed to 16 bits, one row per block */
    public static final Kernel DEQUANTIZE16_F32 = fixed("dequantize16_f32", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    public static final Kernel DEQUANTIZE16_F16 = fixed("dequantize16_f16", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    public static final Kernel DEQUANTIZE16_BF16 = fixed("dequantize16_bf16", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    public static final Kernel DEQUANTIZE16_Q8_0 = fixed("dequantize16_q8_0", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    public static final Kernel DEQUANTIZE16_Q4_0 = fixed("dequantize16_q4_0", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    public static final Kernel DEQUANTIZE16_Q4_K = fixed("dequantize16_q4_k", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    public static final Kernel DEQUANTIZE16_Q5_K = fixed("dequantize16_q5_k", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);
    public static final Kernel DEQUANTIZE16_Q6_K = fixed("dequantize16_q6_k", Arg.P, Arg.P, Arg.I, Arg.I, Arg.I);

    /**
     * (W0, W1, W2, x, bias0, bias1, bias2, y0, y1, y2, K, n0, n1, n2, R, residual, normWeight, normOut, eps, done): the
     * rows of up to three matrices of one type (null W and 0 rows for the unused), each with an optional bias, and for
     * one matrix optionally rmsnorm_residual's work after it (residual null: none; done: a device word, 0 between
     * launches); {@link #matvec} picks the instantiation.
     */
    private static final Map<TensorType, List<Kernel>> MATVEC = new EnumMap<>(TensorType.class);
    /** (Wg, Wu, x, y, K, N, R): y = silu(x · Wgᵀ) * (x · Wuᵀ). */
    private static final Map<TensorType, List<Kernel>> MATVEC_SWIGLU = new EnumMap<>(TensorType.class);

    static {
        for (TensorType type : List.of(TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0, TensorType.Q4_0,
                TensorType.Q4_K, TensorType.Q5_K, TensorType.Q6_K)) {
            String suffix = type.name().toLowerCase(Locale.ROOT);
            List<Kernel> plain = new ArrayList<>(), swiglu = new ArrayList<>();
            for (int rows : LaunchGeometry.MATVEC_ROW_COUNTS) {
                plain.add(fixed("matvec_" + suffix + "_r" + rows, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P, Arg.P,
                        Arg.P, Arg.P, Arg.I, Arg.I, Arg.I, Arg.I, Arg.I, Arg.P, Arg.P, Arg.P, Arg.F, Arg.P));
                if (rows <= LaunchGeometry.MATVEC_GATED_MAX_ROWS) {
                    swiglu.add(fixed("matvec_swiglu_" + suffix + "_r" + rows, Arg.P, Arg.P, Arg.P, Arg.P, Arg.I, Arg.I, Arg.I));
                }
            }
            MATVEC.put(type, List.copyOf(plain));
            MATVEC_SWIGLU.put(type, List.copyOf(swiglu));
        }
    }

    private final String cudaName;
    private final List<Arg> args;

    private Kernel(String cudaName, Arg... args) {
        this.cudaName = cudaName;
        this.args = List.of(args);
    }

    private static Kernel fixed(String cudaName, Arg... args) {
        Kernel k = new Kernel(cudaName, args);
        ALL.add(k);
        return k;
    }

    /** Every kernel of the fatbin and of the host-emulation library. */
    public static List<Kernel> all() { return Collections.unmodifiableList(ALL); }

    /** The kernel's name in the fatbin ({@code extern "C"}, so unmangled). */
    public String cudaName() { return cudaName; }

    /** The host-emulation library's entry point: {@code int tandem_<name>(gx, gy, gz, bx, by, bz, shared, args...)}. */
    public String hostSymbol() { return "tandem_" + cudaName; }

    public List<Arg> args() { return args; }

    @Override
    public String toString() { return cudaName; }

    /** The grouped matvec for {@code rows} activation rows (1..17) of {@code type} weights. */
    public static Kernel matvec(TensorType type, int rows) { return instantiation(MATVEC, "matvec", type, rows); }

    /**
     * The gate-and-up matvec with SwiGLU for {@code rows} activation rows of {@code type} weights, 1 to
     * {@link LaunchGeometry#MATVEC_GATED_MAX_ROWS} (one instantiation per row count).
     */
    public static Kernel matvecSwiglu(TensorType type, int rows) {
        if (rows > LaunchGeometry.MATVEC_GATED_MAX_ROWS) {
            throw new IllegalArgumentException("the gated matvec takes 1.." + LaunchGeometry.MATVEC_GATED_MAX_ROWS + " rows, not " + rows);
        }
        return instantiation(MATVEC_SWIGLU, "matvec_swiglu", type, rows);
    }

    /** Whether matvec kernels exist for {@code type} weights. */
    public static boolean hasMatvec(TensorType type) { return MATVEC.containsKey(type); }

    private static Kernel instantiation(Map<TensorType, List<Kernel>> family, String what, TensorType type, int rows) {
        List<Kernel> kernels = family.get(type);
        if (kernels == null) throw new UnsupportedOperationException("no CUDA " + what + " kernel for " + type + " weights yet");
        return kernels.get(LaunchGeometry.matvecInstantiation(rows));
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

    /** (q, k, v, kCache, vCache, ...) for a K/V cache of {@code type}. */
    public static Kernel ropeKvAppend(KvType type) {
        return switch (type) {
            case F32 -> ROPE_KV_APPEND;
            case F16 -> ROPE_KV_APPEND_F16;
            case BF16 -> ROPE_KV_APPEND_BF16;
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
