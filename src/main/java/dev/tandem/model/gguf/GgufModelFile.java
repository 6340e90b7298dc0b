package dev.tandem.model.gguf;

import dev.tandem.model.Architecture;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.ModelFormatException;
import dev.tandem.model.ModelLimits;
import dev.tandem.model.RopeLayout;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.model.WeightCheck;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Optional;

/** A model in one GGUF file: configuration from its metadata, weights from its tensor directory. */
public final class GgufModelFile implements ModelFile {
    private final GgufFile gguf;
    private final ModelConfig config;

    private GgufModelFile(GgufFile gguf) {
        this.gguf = gguf;
        this.config = readConfig(gguf);
        WeightCheck.check(this);
    }

    public static GgufModelFile open(Path path) {
        GgufFile gguf = GgufFile.open(path);
        try {
            return new GgufModelFile(gguf);
        } catch (RuntimeException e) {
            gguf.close();
            throw e;
        }
    }

    /** The underlying file, for readers of other metadata (tokenizer, chat template). */
    public GgufFile gguf() { return gguf; }

    @Override public Path path() { return gguf.path(); }

    @Override public String format() { return "gguf"; }

    @Override public ModelConfig config() { return config; }

    @Override public Collection<Tensor> tensors() { return gguf.tensors().values(); }

    @Override public Optional<Tensor> findTensor(String name) { return gguf.findTensor(name); }

    @Override public void close() { gguf.close(); }

    /**
     * The configuration in {@code f}'s metadata, every size checked against {@link ModelLimits} by key and
     * against the tensors (the vocabulary against the embedding and the tokenizer, the layer count against the
     * {@code blk.N} tensors present) before anything is sized by it.
     */
    static ModelConfig readConfig(GgufFile f) {
        Architecture arch = Architecture.fromGgufName(f.path(), f.getString("general.architecture"));
        String p = arch.ggufName() + ".";
        Path file = f.path();
        int hidden = size(f, p + "embedding_length", ModelLimits.MAX_HIDDEN);
        int heads = size(f, p + "attention.head_count", ModelLimits.MAX_HEADS);
        int kvHeads = f.has(p + "attention.head_count_kv") ? size(f, p + "attention.head_count_kv", heads) : heads;
        if (heads % kvHeads != 0) {
            throw f.error("attention.head_count " + heads + " is not a positive multiple of attention.head_count_kv " + kvHeads);
        }
        int headDim = f.has(p + "attention.key_length") ? size(f, p + "attention.key_length", ModelLimits.MAX_HEAD_DIM)
                : ModelLimits.count(file, p + "embedding_length / " + p + "attention.head_count", hidden / heads, 1, ModelLimits.MAX_HEAD_DIM);
        int ropeDims = f.has(p + "rope.dimension_count") ? size(f, p + "rope.dimension_count", headDim) : headDim;
        Tensor embedding = f.tensor("token_embd.weight");
        int vocab = f.has(p + "vocab_size") ? size(f, p + "vocab_size", ModelLimits.MAX_VOCABULARY)
                : ModelLimits.count(file, "rows of token_embd.weight", embedding.rows(), 1, ModelLimits.MAX_VOCABULARY);
        Object tokens = f.metadata().get("tokenizer.ggml.tokens");
        if (tokens instanceof String[] t && t.length != vocab) {
            throw f.error("'tokenizer.ggml.tokens' has " + t.length + " tokens but the model's vocabulary has " + vocab
                    + " (" + (f.has(p + "vocab_size") ? "'" + p + "vocab_size'" : "rows of token_embd.weight") + ")");
        }
        int layers = size(f, p + "block_count", ModelLimits.MAX_LAYERS);
        ModelLimits.checkLayersPresent(file, p + "block_count", layers, f.tensors().keySet());
        int ffn = size(f, p + "feed_forward_length", ModelLimits.MAX_FFN);
        int context = size(f, p + "context_length", ModelLimits.MAX_CONTEXT);
        float eps = ModelLimits.positive(file, p + "attention.layer_norm_rms_epsilon", f.getFloat(p + "attention.layer_norm_rms_epsilon"), 1);
        float theta = f.has(p + "rope.freq_base") ? ModelLimits.positive(file, p + "rope.freq_base", f.getFloat(p + "rope.freq_base"), Float.MAX_VALUE) : 10000f;
        Optional<String> scaling = f.findString(p + "rope.scaling.type");
        if (scaling.isPresent() && !scaling.get().equals("none")) {
            throw f.error("RoPE scaling type '" + scaling.get() + "' is not supported (supported: none, Llama 3 rope_freqs)");
        }
        float[] factors = null;
        Optional<Tensor> freqs = f.findTensor("rope_freqs.weight");
        if (freqs.isPresent()) {
            Tensor t = freqs.get();
            if (t.type() != TensorType.F32 || t.elements() != ropeDims / 2) {
                throw f.error("tensor 'rope_freqs.weight' should be F32 with " + ropeDims / 2 + " values, found " + t);
            }
            factors = t.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
        }
        ModelConfig config;
        try {
            config = new ModelConfig(
                    arch,
                    f.findString("general.name").orElse(f.path().getFileName().toString()),
                    vocab,
                    hidden,
                    layers,
                    heads,
                    kvHeads,
                    headDim,
                    ffn,
                    context,
                    eps,
                    theta,
                    ropeDims,
                    arch == Architecture.QWEN2 ? RopeLayout.HALVES : RopeLayout.ADJACENT,
                    factors,
                    f.findTensor("blk.0.attn_q.bias").isPresent(),
                    f.findTensor("output.weight").isEmpty());
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(f.path(), e.getMessage());
        }
        ModelLimits.checkConfig(file, config);
        return config;
    }

    /** An integer key in 1..max, named with its value and range when it is not (never narrowed). */
    private static int size(GgufFile f, String key, long max) {
        if (f.find(key).orElse(null) instanceof Number n && !(n instanceof Integer || n instanceof Long)) {
            throw f.error("'" + key + "' should be an integer, found " + n);
        }
        return ModelLimits.count(f.path(), key, f.getLong(key), 1, max);
    }
}
