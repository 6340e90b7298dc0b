package dev.tandem.model;

import dev.tandem.model.gguf.GgufModelFile;
import dev.tandem.model.hf.HfModelFolder;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Optional;

/**
 * A model on disk: its configuration and its weights, named as in GGUF ({@code token_embd.weight},
 * {@code blk.N.attn_q.weight}, ...) whatever the format. Weights are views of mapped files, never copies.
 */
public interface ModelFile extends AutoCloseable {
    /** The file or folder the model was opened from. */
    Path path();

    /** "gguf" or "hf". */
    String format();

    ModelConfig config();

    Collection<Tensor> tensors();

    Optional<Tensor> findTensor(String name);

    /** The tensor, or a {@link ModelFormatException} naming it and the file. */
    default Tensor tensor(String name) {
        return findTensor(name).orElseThrow(() -> new ModelFormatException(path(), "missing tensor '" + name + "'"));
    }

    /** Total bytes of all weights. */
    default long weightBytes() {
        long n = 0;
        for (Tensor t : tensors()) n += t.byteSize();
        return n;
    }

    @Override
    void close();

    /** Opens a GGUF file or a Hugging Face folder, by what {@code path} is. */
    static ModelFile open(Path path) {
        if (Files.isDirectory(path)) return HfModelFolder.open(path);
        if (!Files.exists(path)) throw new ModelFormatException(path, "no such file or folder");
        return GgufModelFile.open(path);
    }
}
