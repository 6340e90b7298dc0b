package dev.tandem.forge;

import dev.tandem.model.Architecture;
import dev.tandem.model.ModelFormatException;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.model.gguf.GgufWriter;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Writes synthetic GGUF models: random seeded weights in any shape ({@link #write}), drafts cut from a forged
 * main model ({@link #writeDraft}), and the same weights re-encoded in another type ({@link #convert}).
 * See the package documentation for the scales and how to make a main/draft pair.
 */
public final class Forge {
    /** Told the bytes written so far and the file's total, after each piece of tensor data. */
    @FunctionalInterface
    public interface Progress {
        void update(long written, long total);

        Progress NONE = (written, total) -> {};
    }

    /** Logit spread the output norm is scaled for: the standard deviation of a logit over the vocabulary. */
    static final float LOGIT_STD = 3f;
    /** Relative spread of the norm weights around their mean. */
    static final float NORM_SPREAD = 0.1f;
    /** Standard deviation of the Q/K/V biases (qwen2). */
    static final float BIAS_STD = 0.2f;

    private Forge() {}

    public static void write(ForgeSpec spec, Path out) throws IOException {
        write(spec, out, Progress.NONE);
    }

    /**
     * Writes the model {@code spec} describes to {@code out}. The same spec gives the same bytes; specs that
     * differ only in {@link ForgeSpec#type()} hold the same weights (before encoding).
     */
    public static void write(ForgeSpec spec, Path out, Progress progress) throws IOException {
        GgufWriter w = new GgufWriter();
        String arch = spec.architecture().ggufName();
        w.putString("general.architecture", arch);
        w.putString("general.name", String.format("forged %s h%d l%d", arch, spec.hidden(), spec.layers()));
        w.putUInt32("general.file_type", spec.type().fileType());
        w.putString("tandem.forge.seed", Long.toString(spec.seed()));
        w.putFloat32("tandem.forge.agreement_eps", spec.agreementEps());
        w.putUInt32("tandem.forge.draft_layers", spec.draftLayers());
        String p = arch + ".";
        w.putUInt32(p + "vocab_size", spec.vocab());
        w.putUInt32(p + "context_length", spec.context());
        w.putUInt32(p + "embedding_length", spec.hidden());
        w.putUInt32(p + "block_count", spec.layers());
        w.putUInt32(p + "feed_forward_length", spec.ffn());
        w.putUInt32(p + "attention.head_count", spec.heads());
        w.putUInt32(p + "attention.head_count_kv", spec.kvHeads());
        w.putUInt32(p + "attention.key_length", spec.headDim());
        w.putUInt32(p + "attention.value_length", spec.headDim());
        w.putUInt32(p + "rope.dimension_count", spec.headDim());
        w.putFloat32(p + "rope.freq_base", spec.ropeTheta());
        w.putFloat32(p + "attention.layer_norm_rms_epsilon", spec.rmsNormEps());
        if (spec.tokenizerFrom() == null) {
            SyntheticVocabulary.putInto(w, spec.vocab());
        } else {
            try (GgufFile source = GgufFile.open(spec.tokenizerFrom())) {
                int tokens = SyntheticVocabulary.copyInto(w, source);
                if (tokens != spec.vocab()) {
                    throw new IllegalArgumentException("--vocab " + spec.vocab() + " does not match the " + tokens
                            + " tokens of --tokenizer-from " + spec.tokenizerFrom());
                }
            }
        }
        new Weights(spec, w).addAll();
        long total = w.fileSize();
        w.write(out, written -> progress.update(written, total));
    }

    /**
     * Writes a draft of {@code main}: its metadata (tokenizer included) with {@code block_count} set to
     * {@code layers}, and its token embedding, output norm, output head and first {@code layers} layers, their
     * bytes copied unchanged.
     */
    public static void writeDraft(Path main, int layers, Path out, Progress progress) throws IOException {
        try (GgufFile source = GgufFile.open(main)) {
            Architecture arch = Architecture.fromGgufName(main, source.getString("general.architecture"));
            String blockCount = arch.ggufName() + ".block_count";
            int mainLayers = source.getInt(blockCount);
            if (layers < 1 || layers > mainLayers) {
                throw new IllegalArgumentException("--layers " + layers + " must be between 1 and the " + mainLayers + " layers of " + main);
            }
            GgufWriter w = new GgufWriter();
            source.metadata().forEach(w::putAsRead);
            w.putUInt32(blockCount, layers);
            w.putString("general.name", source.findString("general.name").orElse("model") + " (draft: first " + layers + " layers)");
            for (Tensor t : source.tensors().values()) {
                int layer = ForgeType.layerOf(t.name());
                if (layer >= layers) continue;
                w.addTensor(t.name(), t.type(), t.shape(), sink -> sink.write(t.data()));
            }
            long total = w.fileSize();
            w.write(out, written -> progress.update(written, total));
        }
    }

    /**
     * Re-writes {@code source} with its matrices in {@code type}: metadata as read (with {@code general.file_type}
     * updated), vectors copied unchanged, every matrix dequantised row by row and encoded in the type the scheme
     * gives it. Converting a forged F32 model gives the bytes forging it in {@code type} gives.
     */
    public static void convert(Path source, ForgeType type, Path out, Progress progress) throws IOException {
        try (GgufFile in = GgufFile.open(source)) {
            Architecture arch = Architecture.fromGgufName(source, in.getString("general.architecture"));
            int layers = in.getInt(arch.ggufName() + ".block_count");
            boolean tied = in.findTensor("output.weight").isEmpty();
            GgufWriter w = new GgufWriter();
            in.metadata().forEach(w::putAsRead);
            w.putUInt32("general.file_type", type.fileType());
            for (Tensor t : in.tensors().values()) {
                if (t.dimensions() != 2) {
                    w.addTensor(t.name(), t.type(), t.shape(), sink -> sink.write(t.data()));
                    continue;
                }
                TensorType target = type.matrixType(t.name(), layers, tied);
                if (t.columns() % target.blockSize() != 0) {
                    throw new ModelFormatException(source, "tensor '" + t.name() + "' rows of " + t.columns()
                            + " are not a multiple of the " + target + " block size " + target.blockSize());
                }
                long rowBytes = t.rowBytes();
                w.addTensor(t.name(), target, t.shape(), new RowEncoder(target, t.rows(), t.columns(),
                        (row, dst, off) -> t.type().dequantize(t.data(), row * rowBytes, dst, off, t.columns())));
            }
            long total = w.fileSize();
            w.write(out, written -> progress.update(written, total));
        }
    }

    /**
     * The tensors of a forged model and their scales. Scales keep activations O(1) through any depth: inputs of
     * every matrix are RMS-normalised (or are attention/FFN outputs of RMS ≈ 1), so a matrix with n inputs gets
     * standard deviation 1/√n. The residual stream starts at RMS 1 (embedding std 1) and each layer adds O(1).
     * The output head (std 1, the embedding when tied) reads the final norm, whose weights are
     * {@link #LOGIT_STD}/√hidden, so logits have a spread of about {@link #LOGIT_STD}: peaked enough for
     * meaningful greedy choices, flat enough that the top few compete.
     */
    private record Weights(ForgeSpec spec, GgufWriter w) {
        void addAll() {
            int h = spec.hidden();
            matrix("token_embd.weight", h, spec.vocab(), 1f);
            vector("output_norm.weight", h, LOGIT_STD / (float) Math.sqrt(h), NORM_SPREAD * LOGIT_STD / (float) Math.sqrt(h));
            if (!spec.tied()) matrix("output.weight", h, spec.vocab(), 1f);
            float[] ropeFactors = spec.ropeFrequencyFactors();
            if (ropeFactors != null) {
                // Llama 3 scaling as llama.cpp's converter stores it: per rotary pair, the divisor of its frequency.
                w.addTensor("rope_freqs.weight", TensorType.F32, new long[] {ropeFactors.length}, new RowEncoder(TensorType.F32, 1,
                        ropeFactors.length, (row, dst, off) -> System.arraycopy(ropeFactors, 0, dst, off, ropeFactors.length)));
            }
            float inScale = 1f / (float) Math.sqrt(h);
            for (int l = 0; l < spec.layers(); l++) {
                String p = "blk." + l + ".";
                float outFactor = l >= spec.draftLayers() ? spec.agreementEps() : 1f;
                vector(p + "attn_norm.weight", h, 1f, NORM_SPREAD);
                matrix(p + "attn_q.weight", h, spec.qDim(), inScale);
                matrix(p + "attn_k.weight", h, spec.kvDim(), inScale);
                matrix(p + "attn_v.weight", h, spec.kvDim(), inScale);
                if (spec.architecture() == Architecture.QWEN2) {
                    vector(p + "attn_q.bias", spec.qDim(), 0f, BIAS_STD);
                    vector(p + "attn_k.bias", spec.kvDim(), 0f, BIAS_STD);
                    vector(p + "attn_v.bias", spec.kvDim(), 0f, BIAS_STD);
                }
                matrix(p + "attn_output.weight", spec.qDim(), h, outFactor / (float) Math.sqrt(spec.qDim()));
                vector(p + "ffn_norm.weight", h, 1f, NORM_SPREAD);
                matrix(p + "ffn_gate.weight", h, spec.ffn(), inScale);
                matrix(p + "ffn_up.weight", h, spec.ffn(), inScale);
                matrix(p + "ffn_down.weight", spec.ffn(), h, outFactor / (float) Math.sqrt(spec.ffn()));
            }
        }

        /** A matrix with {@code columns} inputs (row length) and {@code rows} outputs. */
        private void matrix(String name, int columns, int rows, float std) {
            TensorType type = spec.type().matrixType(name, spec.layers(), spec.tied());
            long key = RandomRows.tensorKey(spec.seed(), name);
            w.addTensor(name, type, new long[] {columns, rows},
                    new RowEncoder(type, rows, columns, (row, dst, off) -> RandomRows.fill(key, row, dst, off, columns, 0f, std)));
        }

        private void vector(String name, int length, float mean, float std) {
            long key = RandomRows.tensorKey(spec.seed(), name);
            w.addTensor(name, TensorType.F32, new long[] {length},
                    new RowEncoder(TensorType.F32, 1, length, (row, dst, off) -> RandomRows.fill(key, row, dst, off, length, mean, std)));
        }
    }
}
