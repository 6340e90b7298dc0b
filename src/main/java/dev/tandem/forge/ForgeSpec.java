package dev.tandem.forge;

import dev.tandem.model.Architecture;
import dev.tandem.model.ModelConfig;

import java.nio.file.Path;
import java.util.List;

/**
 * The shape and content of a forged model. Validation messages name the {@code tandem forge} flag at fault,
 * since that is where users meet them.
 *
 * @param type           element type scheme of the matrices (vectors stay F32)
 * @param tied           the output head is the token embedding (no {@code output.weight})
 * @param seed           seed of every random weight; the vocabulary does not depend on it
 * @param agreementEps   factor on the output projections ({@code attn_output}, {@code ffn_down}) of layers
 *                       {@code >= draftLayers}: 1 leaves them as drawn, 0 makes those layers contribute nothing
 * @param draftLayers    layers a draft made with {@code --draft-of} will keep (0: no draft planned)
 * @param tokenizerFrom  a GGUF file whose {@code tokenizer.*} metadata is copied, or {@code null} for the
 *                       synthetic SentencePiece vocabulary of {@link SyntheticVocabulary}
 * @param llama3RopeFactor Llama 3 RoPE frequency scaling with this factor (low/high frequency factors 1 and 4,
 *                       original context 8192, as Llama 3.1 and 3.2 ship it), written as {@code rope_freqs.weight};
 *                       0 for unscaled frequencies
 */
public record ForgeSpec(
        Architecture architecture,
        int vocab,
        int hidden,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int ffn,
        int context,
        ForgeType type,
        boolean tied,
        float ropeTheta,
        long seed,
        float agreementEps,
        int draftLayers,
        Path tokenizerFrom,
        float llama3RopeFactor) {

    public static final List<String> PRESETS = List.of("tiny", "llama-3.2-1b", "llama-3.2-3b", "llama-3-8b", "llama-3.1-8b");

    /** Llama 3 scaling's fixed parameters (the same in every Llama 3.1 and 3.2 config.json). */
    public static final double LLAMA3_LOW_FREQ_FACTOR = 1, LLAMA3_HIGH_FREQ_FACTOR = 4;
    public static final int LLAMA3_ORIGINAL_CONTEXT = 8192;

    /** A spec with unscaled RoPE frequencies. */
    public ForgeSpec(Architecture architecture, int vocab, int hidden, int layers, int heads, int kvHeads, int headDim, int ffn,
                     int context, ForgeType type, boolean tied, float ropeTheta, long seed, float agreementEps, int draftLayers,
                     Path tokenizerFrom) {
        this(architecture, vocab, hidden, layers, heads, kvHeads, headDim, ffn, context, type, tied, ropeTheta, seed, agreementEps,
                draftLayers, tokenizerFrom, 0f);
    }

    public ForgeSpec {
        if (architecture == null) throw new IllegalArgumentException("--arch is required (llama or qwen2)");
        if (type == null) throw new IllegalArgumentException("--type is required");
        inRange("--vocab", vocab, MAX_VOCAB);
        inRange("--hidden", hidden, MAX_WIDTH);
        inRange("--layers", layers, MAX_LAYERS);
        inRange("--heads", heads, MAX_HEADS);
        inRange("--kv-heads", kvHeads, MAX_HEADS);
        inRange("--head-dim", headDim, MAX_HEAD_DIM);
        inRange("--ffn", ffn, MAX_WIDTH * 8);
        inRange("--context", context, MAX_CONTEXT);
        if (heads % kvHeads != 0) throw new IllegalArgumentException("--heads " + heads + " is not a multiple of --kv-heads " + kvHeads);
        if (headDim % 2 != 0) throw new IllegalArgumentException("--head-dim " + headDim + " must be even (RoPE rotates pairs)");
        if (tokenizerFrom == null && vocab < SyntheticVocabulary.MIN_SIZE) {
            throw new IllegalArgumentException("--vocab " + vocab + " is too small: the synthetic vocabulary needs at least "
                    + SyntheticVocabulary.MIN_SIZE + " tokens (3 special, 256 bytes, 1 piece)");
        }
        int block = type.blockSize();
        if (block > 1) {
            String rule = " is not a multiple of the " + type + " block size " + block;
            if (hidden % block != 0) throw new IllegalArgumentException("--hidden " + hidden + rule);
            if ((long) heads * headDim % block != 0) throw new IllegalArgumentException("--heads × --head-dim = " + (long) heads * headDim + rule);
            if (ffn % block != 0) throw new IllegalArgumentException("--ffn " + ffn + rule);
        }
        if (!(ropeTheta > 0) || Float.isInfinite(ropeTheta)) throw new IllegalArgumentException("--rope-theta must be positive, got " + ropeTheta);
        if (!(agreementEps >= 0) || Float.isInfinite(agreementEps)) {
            throw new IllegalArgumentException("--agreement-eps must be a finite number ≥ 0, got " + agreementEps);
        }
        if (draftLayers < 0 || draftLayers > layers) {
            throw new IllegalArgumentException("--draft-layers " + draftLayers + " must be between 0 and --layers " + layers);
        }
        if (agreementEps != 1f && draftLayers == 0) {
            throw new IllegalArgumentException("--agreement-eps needs --draft-layers N: the layers from N on are the ones it scales");
        }
        if (!(llama3RopeFactor == 0 || llama3RopeFactor >= 1) || Float.isInfinite(llama3RopeFactor)) {
            throw new IllegalArgumentException("the Llama 3 RoPE scaling factor must be 0 (none) or a finite number ≥ 1, got " + llama3RopeFactor);
        }
    }

    /**
     * Upper bounds, a few times the largest real models' (vocabularies of 256k, widths of 16k and FFNs of 53k,
     * 126 layers, 128 heads of 256): beyond them a forged file would be made of nothing but one tensor, and the
     * synthetic vocabulary or the RoPE tables would not fit in memory.
     */
    public static final int MAX_VOCAB = 1 << 20, MAX_WIDTH = 1 << 16, MAX_LAYERS = 1024, MAX_HEADS = 1024, MAX_HEAD_DIM = 1024,
            MAX_CONTEXT = 1 << 20;

    private static void inRange(String flag, int value, int max) {
        if (value <= 0 || value > max) throw new IllegalArgumentException(flag + " must be in [1, " + max + "], got " + value);
    }

    /**
     * A named shape: {@code tiny} (a small llama for tests: vocab 1024, hidden 256, 4 layers, 4/2 heads of 64,
     * FFN 512, F32, untied), {@code llama-3.2-3b} (hidden 3072, 28 layers, 24/8 heads of 128, FFN 8192, vocab
     * 128256, tied, RoPE θ 500000, context capped at 8192, Q8_0) and {@code llama-3-8b} (4096, 32 layers,
     * 32/8 heads, FFN 14336, vocab 128256, untied, Q8_0); {@code llama-3.1-8b} is {@code llama-3-8b} with Llama 3
     * RoPE scaling (factor 8) and {@code llama-3.2-1b} is hidden 2048, 16 layers, 32/8 heads of 64, FFN 8192,
     * vocab 128256, tied, Llama 3 scaling factor 32, Q8_0 — the shapes of those models' config.json (contexts
     * capped at 8192). Seed 1, no draft scaling.
     */
    public static ForgeSpec preset(String name) {
        return switch (name.trim().toLowerCase()) {
            case "tiny" -> new ForgeSpec(Architecture.LLAMA, 1024, 256, 4, 4, 2, 64, 512, 1024, ForgeType.F32,
                    false, 10000f, 1, 1f, 0, null);
            case "llama-3.2-1b" -> new ForgeSpec(Architecture.LLAMA, 128256, 2048, 16, 32, 8, 64, 8192, 8192,
                    ForgeType.Q8_0, true, 500000f, 1, 1f, 0, null, 32f);
            case "llama-3.2-3b" -> new ForgeSpec(Architecture.LLAMA, 128256, 3072, 28, 24, 8, 128, 8192, 8192,
                    ForgeType.Q8_0, true, 500000f, 1, 1f, 0, null);
            case "llama-3-8b" -> new ForgeSpec(Architecture.LLAMA, 128256, 4096, 32, 32, 8, 128, 14336, 8192,
                    ForgeType.Q8_0, false, 500000f, 1, 1f, 0, null);
            case "llama-3.1-8b" -> new ForgeSpec(Architecture.LLAMA, 128256, 4096, 32, 32, 8, 128, 14336, 8192,
                    ForgeType.Q8_0, false, 500000f, 1, 1f, 0, null, 8f);
            default -> throw new IllegalArgumentException("--preset: unknown preset '" + name + "' (known: " + String.join(", ", PRESETS) + ")");
        };
    }

    /** Per rotary pair, the divisor of its frequency under {@link #llama3RopeFactor}; {@code null} when unscaled. */
    public float[] ropeFrequencyFactors() {
        if (llama3RopeFactor == 0) return null;
        return ModelConfig.llama3FrequencyFactors(headDim, ropeTheta, llama3RopeFactor, LLAMA3_LOW_FREQ_FACTOR,
                LLAMA3_HIGH_FREQ_FACTOR, LLAMA3_ORIGINAL_CONTEXT);
    }

    public int qDim() { return heads * headDim; }

    public int kvDim() { return kvHeads * headDim; }

    /** RMSNorm epsilon written to the file: what the real models of the family use. */
    public float rmsNormEps() { return architecture == Architecture.QWEN2 ? 1e-6f : 1e-5f; }

    public ForgeSpec withArchitecture(Architecture a) {
        return new ForgeSpec(a, vocab, hidden, layers, heads, kvHeads, headDim, ffn, context, type, tied, ropeTheta, seed, agreementEps, draftLayers, tokenizerFrom, llama3RopeFactor);
    }

    public ForgeSpec withType(ForgeType t) {
        return new ForgeSpec(architecture, vocab, hidden, layers, heads, kvHeads, headDim, ffn, context, t, tied, ropeTheta, seed, agreementEps, draftLayers, tokenizerFrom, llama3RopeFactor);
    }

    public ForgeSpec withTied(boolean tiedHead) {
        return new ForgeSpec(architecture, vocab, hidden, layers, heads, kvHeads, headDim, ffn, context, type, tiedHead, ropeTheta, seed, agreementEps, draftLayers, tokenizerFrom, llama3RopeFactor);
    }

    public ForgeSpec withSeed(long s) {
        return new ForgeSpec(architecture, vocab, hidden, layers, heads, kvHeads, headDim, ffn, context, type, tied, ropeTheta, s, agreementEps, draftLayers, tokenizerFrom, llama3RopeFactor);
    }

    /** The same model with the output projections of layers {@code >= draftLayers} scaled by {@code eps}. */
    public ForgeSpec withAgreement(float eps, int draft) {
        return new ForgeSpec(architecture, vocab, hidden, layers, heads, kvHeads, headDim, ffn, context, type, tied, ropeTheta, seed, eps, draft, tokenizerFrom, llama3RopeFactor);
    }

    public ForgeSpec withTokenizerFrom(Path file, int vocabSize) {
        return new ForgeSpec(architecture, vocabSize, hidden, layers, heads, kvHeads, headDim, ffn, context, type, tied, ropeTheta, seed, agreementEps, draftLayers, file, llama3RopeFactor);
    }
}
