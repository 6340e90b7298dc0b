package dev.tandem.engine;

import dev.tandem.runtime.Backend;
import dev.tandem.runtime.Batch;

/**
 * A backend (the CPU's unless another is given) behind a gate a test works: open (the default), passes run freely; {@link #hold held}, each pass
 * spends a permit from {@link #allow} and waits on the engine's thread while there is none. A test that must act
 * while a generation is still running (close its stream, fill the queue beside it) holds the gate before the
 * generation could end, so no race with the engine's speed decides the outcome. Open it again in a finally: an
 * engine waiting at the gate cannot close.
 */
public final class GatedBackend extends InterceptingBackend {
    private boolean held;
    private long permits;

    public GatedBackend() {}

    /** Gates {@code inner}'s passes; closing this closes it. */
    public GatedBackend(Backend inner) {
        super(inner);
    }

    /** From now on each pass needs a permit; {@code permits} are granted now. */
    public synchronized void hold(long permits) {
        this.held = true;
        this.permits = permits;
    }

    /** Grants {@code n} more passes. */
    public synchronized void allow(long n) {
        permits += n;
        notifyAll();
    }

    /** Passes run freely again. */
    public synchronized void open() {
        held = false;
        notifyAll();
    }

    @Override
    protected synchronized void beforePass(Batch batch) {
        try {
            while (held && permits == 0) wait();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted at the gate", e);
        }
        if (held) permits--;
    }
}
