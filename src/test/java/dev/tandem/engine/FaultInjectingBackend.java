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

import java.util.function.Supplier;

/**
 * The CPU backend, except that a main-model pass whose rows include {@link #TRIGGER} throws what {@link #arm} was
 * given, once per pass: a prompt holding that token fails in its prefill, and no other sequence sees the fault.
 */
public final class FaultInjectingBackend implements Backend {
    /** A token id every test vocabulary has; prompts without it never meet the fault. */
    public static final int TRIGGER = 777;

    private final CpuBackend cpu = new CpuBackend();
    private volatile Supplier<? extends Throwable> fault;

    /** From now on, passes over {@link #TRIGGER} throw {@code fault.get()}. */
    public void arm(Supplier<? extends Throwable> fault) { this.fault = fault; }

    @Override public String name() { return "cpu"; }

    @Override
    public LoadedModel load(ModelFile file, LoadOptions options) {
        LoadedModel model = cpu.load(file, options);
        return new LoadedModel() {
            @Override public ModelConfig config() { return model.config(); }

            @Override public KvCache createKvCache(PagedKvCache tables) { return model.createKvCache(tables); }

            @Override public long kvBytesPerPosition() { return model.kvBytesPerPosition(); }

            @Override
            public ForwardResult forward(Batch batch, KvCache kv) {
                Supplier<? extends Throwable> f = fault;
                if (f != null) {
                    for (int t : batch.tokens()) if (t == TRIGGER) throwUnchecked(f.get());
                }
                return model.forward(batch, kv);
            }

            @Override public void close() { model.close(); }
        };
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> void throwUnchecked(Throwable t) throws T {
        throw (T) t;
    }

    @Override public void close() { cpu.close(); }
}
