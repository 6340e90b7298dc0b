package dev.tandem.engine;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;

/**
 * A backend (the CPU's unless another is given) with a test's hook before every forward pass (main and draft models
 * alike), on the engine's thread: the hook may throw, which fails the pass, or wait, which holds the whole engine.
 */
public abstract class InterceptingBackend implements Backend {
    private final Backend inner;

    protected InterceptingBackend() {
        this(new CpuBackend());
    }

    /** Intercepts {@code inner}'s passes; closing this closes it. */
    protected InterceptingBackend(Backend inner) {
        this.inner = inner;
    }

    /** Runs before {@code batch} goes to the model; {@code batch} is read, never changed. */
    protected abstract void beforePass(Batch batch);

    @Override public String name() { return inner.name(); }

    @Override
    public LoadedModel load(ModelFile file, LoadOptions options) {
        LoadedModel model = inner.load(file, options);
        return new LoadedModel() {
            @Override public ModelConfig config() { return model.config(); }

            @Override public KvCache createKvCache(PagedKvCache tables) { return model.createKvCache(tables); }

            @Override public long kvBytesPerPosition() { return model.kvBytesPerPosition(); }

            @Override
            public ForwardResult forward(Batch batch, KvCache kv) {
                beforePass(batch);
                return model.forward(batch, kv);
            }

            @Override public void close() { model.close(); }
        };
    }

    @Override public void close() { inner.close(); }
}
