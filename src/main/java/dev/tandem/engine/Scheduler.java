package dev.tandem.engine;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.tokenizer.Tokenizer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The one thread that runs the main model. Each loop: take new requests, drop cancelled or expired ones,
 * admit waiting ones while a batch slot and K/V blocks are free (prefill, first token), then one forward pass
 * with the next token of every active sequence — continuous batching: sequences join and leave between passes.
 *
 * <p>K/V admission: a sequence is admitted only when the pool can hold its prompt plus all the tokens it may
 * generate, so a running sequence never meets an exhausted cache. Because the CPU backend's rows are
 * batch-invariant, a sequence's tokens do not depend on what else is in the batch.
 */
final class Scheduler implements AutoCloseable {
    private final LoadedModel model;
    private final KvCache kv;
    private final PagedKvCache tables;
    private final Tokenizer tokenizer;
    private final int parallel;
    private final int maxQueue;
    private final LinkedBlockingQueue<Sequence> inbox = new LinkedBlockingQueue<>();
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> active = new ArrayList<>();
    /** Submitted and not finished: active + waiting + in the inbox. */
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger activeCount = new AtomicInteger();
    private final AtomicLong completed = new AtomicLong(), cancelled = new AtomicLong(), rejected = new AtomicLong();
    private final AtomicLong generatedTokens = new AtomicLong(), passes = new AtomicLong();
    private int committedBlocks;
    private final Thread thread;
    private volatile boolean closing;

    Scheduler(LoadedModel model, KvCache kv, Tokenizer tokenizer, int parallel, int maxQueue) {
        this.model = model;
        this.kv = kv;
        this.tables = kv.tables();
        this.tokenizer = tokenizer;
        this.parallel = parallel;
        this.maxQueue = maxQueue;
        this.thread = Thread.ofPlatform().name("tandem-scheduler").daemon(true).unstarted(this::run);
        thread.start();
    }

    int blocksFor(int positions) {
        return (positions + tables.blockSize() - 1) / tables.blockSize();
    }

    int totalBlocks() { return tables.totalBlocks(); }

    /** Queues a sequence, or throws {@link EngineOverloadedException} when every slot and queue place is taken. */
    void submit(Sequence s) {
        if (closing) throw new IllegalStateException("the engine is closed");
        int n = inFlight.incrementAndGet();
        if (n > parallel + maxQueue) {
            inFlight.decrementAndGet();
            rejected.incrementAndGet();
            int running = activeCount.get();
            throw new EngineOverloadedException(running, Math.max(0, n - 1 - running));
        }
        inbox.add(s);
    }

    EngineStats stats() {
        int running = activeCount.get();
        int blocks = tables.totalBlocks();
        return new EngineStats(running, Math.max(0, inFlight.get() - running), blocks - tables.freeBlocks(), blocks,
                completed.get(), cancelled.get(), rejected.get(), generatedTokens.get(), passes.get());
    }

    private void run() {
        try {
            while (!closing) {
                if (active.isEmpty() && waiting.isEmpty()) {
                    Sequence s = inbox.poll(200, TimeUnit.MILLISECONDS);
                    if (s != null) waiting.add(s);
                } else if (active.isEmpty()) {
                    Sequence s = inbox.poll(10, TimeUnit.MILLISECONDS);   // waiting ones may have a deadline
                    if (s != null) waiting.add(s);
                }
                inbox.drainTo(waiting);
                dropFinishedWaiting();
                admit();
                dropFinishedActive();
                if (!active.isEmpty()) step();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            IllegalStateException closed = new IllegalStateException("the engine was closed");
            inbox.drainTo(waiting);
            for (Sequence s : active) fail(s, closed);
            for (Sequence s : waiting) fail(s, closed);
            active.clear();
            waiting.clear();
        }
    }

    /** Cancelled or expired before they ran. */
    private void dropFinishedWaiting() {
        long now = System.nanoTime();
        for (Iterator<Sequence> it = waiting.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            FinishReason r = s.generation.isCancelRequested() ? FinishReason.CANCELLED : s.pastDeadline(now) ? FinishReason.DEADLINE : null;
            if (r != null) {
                it.remove();
                finish(s, r);
            }
        }
    }

    private void dropFinishedActive() {
        long now = System.nanoTime();
        for (Iterator<Sequence> it = active.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            FinishReason r = s.generation.isCancelRequested() ? FinishReason.CANCELLED : s.pastDeadline(now) ? FinishReason.DEADLINE : null;
            if (r != null) {
                it.remove();
                finish(s, r);
            }
        }
        activeCount.set(active.size());
    }

    /** First come, first served: the head waits for blocks rather than being overtaken by smaller requests. */
    private void admit() {
        while (active.size() < parallel && !waiting.isEmpty()) {
            Sequence s = waiting.peek();
            if (committedBlocks + s.committedBlocks > tables.totalBlocks()) break;
            waiting.poll();
            committedBlocks += s.committedBlocks;
            s.kvSequence = tables.createSequence();
            activeCount.set(active.size() + 1);
            try {
                for (int t : s.prompt) s.sampler.accept(t);
                tables.reserve(s.kvSequence, s.prompt.length);
                ForwardResult r = model.forward(Batch.of(s.kvSequence, 0, s.prompt, false), kv);
                passes.incrementAndGet();
                s.position = s.prompt.length;
                if (accept(s, s.sampler.sample(r, 0))) active.add(s);
            } catch (RuntimeException e) {
                fail(s, e);
            }
            activeCount.set(active.size());
        }
    }

    /** One pass: the pending token of every active sequence, one row each. */
    private void step() {
        int n = active.size();
        int[] tokens = new int[n], positions = new int[n], sequences = new int[n], rows = new int[n];
        for (int i = 0; i < n; i++) {
            Sequence s = active.get(i);
            tables.reserve(s.kvSequence, s.position + 1);
            tokens[i] = s.lastToken;
            positions[i] = s.position;
            sequences[i] = s.kvSequence;
            rows[i] = i;
        }
        ForwardResult r;
        try {
            r = model.forward(new Batch(tokens, positions, sequences, rows), kv);
        } catch (RuntimeException e) {
            for (Sequence s : active) fail(s, e);
            active.clear();
            activeCount.set(0);
            return;
        }
        passes.incrementAndGet();
        List<Sequence> still = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            Sequence s = active.get(i);
            s.position++;
            if (accept(s, s.sampler.sample(r, i))) still.add(s);
        }
        active.clear();
        active.addAll(still);
        activeCount.set(active.size());
    }

    /** Takes a newly chosen token; returns whether the sequence goes on. */
    private boolean accept(Sequence s, int token) {
        if (s.generatedCount == 0) s.firstTokenNanos = System.nanoTime();
        if (!s.ignoreEndOfGeneration && tokenizer.isEndOfGeneration(token)) {
            finish(s, FinishReason.STOP);
            return false;
        }
        s.addGenerated(token);
        s.sampler.accept(token);
        s.lastToken = token;
        generatedTokens.incrementAndGet();
        String shown = s.stops.feed(s.decoder.feed(token));
        s.text.append(shown);
        s.generation.publish(new GenerationEvent.Chunk(shown, new int[] {token}));
        if (s.stops.matched()) {
            finish(s, FinishReason.STOP);
            return false;
        }
        if (s.generatedCount >= s.maxTokens) {
            finish(s, FinishReason.LENGTH);
            return false;
        }
        return true;
    }

    private void finish(Sequence s, FinishReason reason) {
        if (!s.stops.matched()) {
            String rest = s.stops.feed(s.decoder.flush());
            if (!s.stops.matched()) rest += s.stops.flush();
            if (!rest.isEmpty()) {
                s.text.append(rest);
                s.generation.publish(new GenerationEvent.Chunk(rest, new int[0]));
            }
        }
        release(s);
        if (reason == FinishReason.CANCELLED) cancelled.incrementAndGet();
        else completed.incrementAndGet();
        GenerationStats stats = stats(s);
        s.generation.publish(new GenerationEvent.Finished(reason, stats));
        s.generation.complete(new GenerationOutput(s.text.toString(), s.generatedTokens(), reason, stats));
    }

    private void fail(Sequence s, Throwable e) {
        release(s);
        s.generation.fail(e);
    }

    private void release(Sequence s) {
        if (s.kvSequence >= 0) {
            tables.release(s.kvSequence);
            s.kvSequence = -1;
            committedBlocks -= s.committedBlocks;
        }
        inFlight.decrementAndGet();
    }

    private static GenerationStats stats(Sequence s) {
        long end = System.nanoTime();
        int count = s.generatedCount;
        double ttft = count == 0 && s.firstTokenNanos == 0 ? 0 : (s.firstTokenNanos - s.submittedNanos) / 1e9;
        double decodeSeconds = (end - s.firstTokenNanos) / 1e9;
        double tps = count > 1 && decodeSeconds > 0 ? (count - 1) / decodeSeconds : count == 1 && ttft > 0 ? 1 / ttft : 0;
        // Speculation is not wired in yet (it comes with dev.tandem.decode): no draft ran, so none is reported.
        return new GenerationStats(s.prompt.length, count, ttft, tps, 0, 0, 0, 0, null);
    }

    @Override
    public void close() {
        closing = true;                 // the loop sees it within one pass or one 200 ms poll
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
