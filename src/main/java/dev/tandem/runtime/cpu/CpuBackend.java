package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;

/** Runs models on the CPU with the Vector API and all cores. */
public final class CpuBackend implements Backend {
    @Override public String name() { return "cpu"; }

    @Override
    public LoadedModel load(ModelFile file, LoadOptions options) {
        return new CpuModel(file, options);
    }

    @Override public void close() {}
}
