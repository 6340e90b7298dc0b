package dev.tandem.runtime;

import dev.tandem.model.ModelFile;

/** A place models run: the CPU, a CUDA device, or the CUDA backend on its host emulation. */
public interface Backend extends AutoCloseable {
    /** "cpu", "cuda" or "cuda-host". */
    String name();

    /** Prepares {@code file}'s weights for this backend. The file must stay open while the model is used. */
    LoadedModel load(ModelFile file, LoadOptions options);

    @Override
    void close();
}
