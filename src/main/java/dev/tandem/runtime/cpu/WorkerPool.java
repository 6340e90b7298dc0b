package dev.tandem.runtime.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Persistent threads that run the tasks of one {@link #forEach} at a time. The calling thread works too,
 * so {@code new WorkerPool(1)} starts no thread. No allocation per call.
 *
 * <p>The tasks are split into one contiguous range per thread, each with its own cursor on its own cache
 * line: a thread takes its own tasks without contending with the others (a shared counter would bounce one
 * cache line between the cores for every task, which costs more than a small model's tasks), then takes
 * what is left of the other ranges. Which thread runs which task therefore varies, so a task's result must
 * not depend on it.
 */
public final class WorkerPool implements AutoCloseable {
    /** Spins before a worker parks: long enough to stay awake between the matmuls of one pass. */
    private static final int SPINS = 20_000;
    /** Ints between two cursors: 64 bytes, so that each sits on a cache line of its own. */
    private static final int PAD = 16;

    private final Thread[] workers;
    /** Thread t's next task at cursors[(t+1)*PAD]; its range ends at ends[t]. */
    private final AtomicIntegerArray cursors;
    private final int[] ends;
    private final AtomicInteger running = new AtomicInteger();
    /** Workers parked or about to park: only they need an unpark (a syscall) to see new work. */
    private final AtomicInteger sleepers = new AtomicInteger();
    private volatile int generation;
    private volatile boolean closed;
    private IntConsumer task;       // task, ends and cursors are published by the volatile write of generation
    private volatile Throwable failure;
    private boolean busy;

    public WorkerPool(int threads) {
        if (threads < 1) throw new IllegalArgumentException("a worker pool needs at least 1 thread, got " + threads);
        workers = new Thread[threads - 1];
        cursors = new AtomicIntegerArray((threads + 2) * PAD);
        ends = new int[threads];
        for (int i = 0; i < workers.length; i++) {
            int self = i + 1;
            workers[i] = Thread.ofPlatform().daemon().name("tandem-cpu-" + self).unstarted(() -> work(self));
            workers[i].start();
        }
    }

    public int threads() { return workers.length + 1; }

    /** Runs task.accept(i) for every i in [0, tasks), spread over the threads; returns when all are done. */
    public void forEach(int tasks, IntConsumer task) {
        if (tasks <= 0) return;
        if (closed) throw new IllegalStateException("worker pool is closed");
        if (busy) throw new IllegalStateException("WorkerPool.forEach called from inside a task or from two threads at once");
        busy = true;
        try {
            if (workers.length == 0 || tasks == 1) {
                for (int i = 0; i < tasks; i++) task.accept(i);
                return;
            }
            int threads = threads();
            for (int t = 0; t < threads; t++) {
                cursors.setPlain((t + 1) * PAD, (int) ((long) tasks * t / threads));
                ends[t] = (int) ((long) tasks * (t + 1) / threads);
            }
            this.task = task;
            failure = null;
            running.set(workers.length);
            generation++;
            // A worker counts itself a sleeper before its last look at generation, so either it sees the new
            // generation or this read sees it (both volatile): no hand-off is lost.
            if (sleepers.get() > 0) for (Thread w : workers) LockSupport.unpark(w);
            drain(0, task);
            for (int spins = 0; running.get() != 0; spins++) {
                if (spins < SPINS) Thread.onSpinWait();
                else Thread.yield();
            }
            this.task = null;
            Throwable t = failure;
            if (t != null) {
                failure = null;
                if (t instanceof RuntimeException e) throw e;
                if (t instanceof Error e) throw e;
                throw new IllegalStateException(t);
            }
        } finally {
            busy = false;
        }
    }

    /** Thread self's own range first, then whatever the other threads have not taken of theirs. */
    private void drain(int self, IntConsumer task) {
        try {
            int threads = ends.length;
            for (int k = 0; k < threads; k++) {
                int t = (self + k) % threads, end = ends[t], cursor = (t + 1) * PAD;
                for (int i; (i = cursors.getAndIncrement(cursor)) < end; ) task.accept(i);
            }
        } catch (Throwable t) {
            failure = t;
            for (int k = 0; k < ends.length; k++) cursors.set((k + 1) * PAD, ends[k]); // the others stop taking tasks
        }
    }

    private void work(int self) {
        int seen = 0;
        while (true) {
            for (int spins = 0; generation == seen && !closed; spins++) {
                if (spins < SPINS) {
                    Thread.onSpinWait();
                } else {
                    sleepers.incrementAndGet();
                    if (generation == seen && !closed) LockSupport.park(this);
                    sleepers.decrementAndGet();
                }
            }
            if (closed) return;
            seen = generation;
            drain(self, task);
            running.decrementAndGet();
        }
    }

    @Override
    public void close() {
        closed = true;
        for (Thread w : workers) LockSupport.unpark(w);
        for (Thread w : workers) {
            try {
                w.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }
}
