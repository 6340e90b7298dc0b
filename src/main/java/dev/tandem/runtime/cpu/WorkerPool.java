package dev.tandem.runtime.cpu;

import java.util.function.IntConsumer;

/** PLACEHOLDER (replaced by the quant branch): runs tasks on the calling thread. */
public final class WorkerPool implements AutoCloseable {
    private final int threads;
    public WorkerPool(int threads) { this.threads = threads; }
    public int threads() { return threads; }
    public void forEach(int tasks, IntConsumer task) { for (int i = 0; i < tasks; i++) task.accept(i); }
    @Override public void close() {}
}
