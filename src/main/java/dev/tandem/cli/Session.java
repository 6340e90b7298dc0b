package dev.tandem.cli;

import dev.tandem.engine.Backends;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;

import java.nio.file.Path;

/**
 * A main model loaded on a backend outside any engine, for {@code tandem bench}'s kernel measurement
 * ({@link dev.tandem.bench.PassCostProbe}); every generation runs on an engine ({@link CommandEngine}, or the bench's).
 */
final class Session implements AutoCloseable {
    final ModelFile mainFile;
    final Backend backend;
    final LoadedModel main;

    private Session(ModelFile mainFile, Backend backend, LoadedModel main) {
        this.mainFile = mainFile;
        this.backend = backend;
        this.main = main;
    }

    /** Loads {@code model} on the backend named {@code backendName} (the one an engine already chose: no fallback). */
    static Session open(Path model, String backendName, RuntimeOptions runtime) {
        LoadOptions options = new LoadOptions(runtime.threads(), runtime.kv(), 64);
        Backends.Loaded<Session> loaded = Backends.load(backendName, backend -> {
            ModelFile file = ModelFile.open(model);
            try {
                return new Session(file, backend, backend.load(file, options.withKvPositions(PROBE_POSITIONS)));
            } catch (RuntimeException e) {
                file.close();
                throw e;
            }
        });
        return loaded.value();
    }

    /** K/V positions the probe needs: a prompt and a 9-row pass. */
    private static final int PROBE_POSITIONS = 4096;

    @Override
    public void close() {
        main.close();
        mainFile.close();
        backend.close();
    }
}
