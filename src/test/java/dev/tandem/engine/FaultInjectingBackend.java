package dev.tandem.engine;

import dev.tandem.runtime.Batch;

import java.util.function.Supplier;

/**
 * The CPU backend, except that a main-model pass whose rows include {@link #TRIGGER} throws what {@link #arm} was
 * given, once per pass: a prompt holding that token fails in its prefill, and no other sequence sees the fault.
 */
public final class FaultInjectingBackend extends InterceptingBackend {
    /** A token id every test vocabulary has; prompts without it never meet the fault. */
    public static final int TRIGGER = 777;

    private volatile Supplier<? extends Throwable> fault;

    /** From now on, passes over {@link #TRIGGER} throw {@code fault.get()}. */
    public void arm(Supplier<? extends Throwable> fault) { this.fault = fault; }

    @Override
    protected void beforePass(Batch batch) {
        Supplier<? extends Throwable> f = fault;
        if (f != null) {
            for (int t : batch.tokens()) if (t == TRIGGER) throwUnchecked(f.get());
        }
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> void throwUnchecked(Throwable t) throws T {
        throw (T) t;
    }
}
