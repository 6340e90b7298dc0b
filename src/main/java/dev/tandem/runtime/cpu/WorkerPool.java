package dev.tandem.runtime.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;

/**
 * Persistent threads that run the tasks of one {@link #forEach} at a time. The calling thread works too,
 * so {@code new WorkerPool(1)} starts no thread. Tasks are handed out by an atomic counter: which thread
 * runs which task varies, so a task's result must not depend on it. No allocation per call.
 */
public final class WorkerPool implements AutoCloseable {
    /** Spins before a worker parks: long enough to stay awake between the matmuls of one pass. */
    private static final int SPINS = 20_000;

    private final Thread[] workers;
    private final AtomicInteger next = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    /** Workers parked or about to park: only they need an unpark (a syscall) to see new work. */
    private final AtomicInteger sleepers = new AtomicInteger();
    private volatile int generation;
    private volatile boolean closed;
    private IntConsumer task;       // published by the volatile write of generation
    private int tasks;
    private volatile Throwable failure;
    private boolean busy;

    public WorkerPool(int threads) {
        if (threads < 1) throw new IllegalArgumentException("a worker pool needs at least 1 thread, got " + threads);
        workers = new Thread[threads - 1];
        for (int i = 0; i < workers.length; i++) {
            workers[i] = Thread.ofPlatform().daemon().name("tandem-cpu-" + (i + 1)).unstarted(this::work);
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
            this.task = task;
            this.tasks = tasks;
            failure = null;
            next.set(0);
            running.set(workers.length);
            generation++;
            // A worker counts itself a sleeper before its last look at generation, so either it sees the new
            // generation or this read sees it (both volatile): no hand-off is lost.
            if (sleepers.get() > 0) for (Thread w : workers) LockSupport.unpark(w);
            drain(task, tasks);
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

    private void drain(IntConsumer task, int tasks) {
        try {
            for (int i; (i = next.getAndIncrement()) < tasks; ) task.accept(i);
        } catch (Throwable t) {
            failure = t;
            next.set(tasks); // the others stop taking tasks
        }
    }

    private void work() {
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
            drain(task, tasks);
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
