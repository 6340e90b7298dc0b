package dev.tandem.testing;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;

/**
 * A backend that loads models a test already holds: {@code main} for the main model's file, {@code draft} for the
 * draft's (told apart by {@link LoadOptions#draft()}). It lets a test run the engine — the loop the server runs —
 * over models it watches, holds, fails on purpose, or mixes from two backends. The engine closes what it loaded;
 * the models belong to the test, which may run several engines over them, so the engine gets views that leave them
 * open. {@code name} is what the engine reports, and decides what it does by backend ("cuda…" drafts ahead by default).
 */
public record StandInBackend(String name, LoadedModel main, LoadedModel draft) implements Backend {
    @Override
    public LoadedModel load(ModelFile file, LoadOptions options) {
        LoadedModel m = options.draft() ? draft : main;
        if (m == null) throw new IllegalStateException("no stand-in for " + (options.draft() ? "a draft" : "the main model") + " (" + file.path() + ")");
        return new ForwardingModel(m);
    }

    @Override public void close() {}
}
