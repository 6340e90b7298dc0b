package dev.tandem.model.gguf;

import dev.tandem.model.Architecture;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.ModelFormatException;
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

    static ModelConfig readConfig(GgufFile f) {
        Architecture arch = Architecture.fromGgufName(f.path(), f.getString("general.architecture"));
        String p = arch.ggufName() + ".";
        int hidden = f.getInt(p + "embedding_length");
        int heads = f.getInt(p + "attention.head_count");
        int kvHeads = f.findLong(p + "attention.head_count_kv").map(Long::intValue).orElse(heads);
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw f.error("attention.head_count " + heads + " is not a positive multiple of attention.head_count_kv " + kvHeads);
        }
        int headDim = f.findLong(p + "attention.key_length").map(Long::intValue).orElse(hidden / heads);
        int ropeDims = f.findLong(p + "rope.dimension_count").map(Long::intValue).orElse(headDim);
        Tensor embedding = f.tensor("token_embd.weight");
        int vocab = f.findLong(p + "vocab_size").map(Long::intValue).orElseGet(() -> embedding.rows());
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
        try {
            return new ModelConfig(
                    arch,
                    f.findString("general.name").orElse(f.path().getFileName().toString()),
                    vocab,
                    hidden,
                    f.getInt(p + "block_count"),
                    heads,
                    kvHeads,
                    headDim,
                    f.getInt(p + "feed_forward_length"),
                    f.getInt(p + "context_length"),
                    f.getFloat(p + "attention.layer_norm_rms_epsilon"),
                    f.findFloat(p + "rope.freq_base").orElse(10000f),
                    ropeDims,
                    arch == Architecture.QWEN2 ? RopeLayout.HALVES : RopeLayout.ADJACENT,
                    factors,
                    f.findTensor("blk.0.attn_q.bias").isPresent(),
                    f.findTensor("output.weight").isEmpty());
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(f.path(), e.getMessage());
        }
    }
}
