package dev.tandem.engine;

import dev.tandem.decode.DraftPolicy;
import dev.tandem.decode.Drafter;
import dev.tandem.decode.PassCostModel;
import dev.tandem.decode.SpeculativeStep;
import dev.tandem.decode.StepPlan;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.DeviceSampling.SampledDraft;
import dev.tandem.runtime.DeviceSampling.SampledVerdict;
import dev.tandem.runtime.DeviceSampling.SampledVerdicts;
import dev.tandem.runtime.DeviceSampling.Verification;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cuda.DeviceFaultException;
import dev.tandem.tokenizer.Tokenizer;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The one thread that runs the main model. Each loop: take new requests, drop cancelled or expired ones,
 * admit waiting ones while a batch slot and K/V blocks are free (prefill, first token), then one forward pass
 * with the next rows of every active sequence — continuous batching: sequences join and leave between passes.
 * Speculative sequences draft first (each on its own, through its draft model or n-gram lookup), then their
 * verification rows {@code [last, d1..dk]} go through the main model in that same one pass with the plain
 * sequences' single rows; each sequence then accepts from its own rows and truncates its block table.
 *
 * <p>K/V admission: a sequence is admitted only when the pool can hold its prompt plus all the tokens it may
 * generate, so a running sequence never meets an exhausted cache. Because the CPU backend's rows are
 * batch-invariant, a sequence's tokens do not depend on what else is in the batch.
 *
 * <p>Prefix caching (when the pool does it): at admission a sequence shares the cached blocks its prompt starts
 * with and prefills only the rest (at least its last token, whose logits choose the first token); after the
 * prefill it publishes its prompt's full blocks, so sequences admitted after it share them, and when it ends
 * normally (not when it fails) it publishes every full block its models wrote, so a conversation's next turn
 * finds its whole history. A block is published for the storages that wrote it: the main model's, and the draft
 * model's when the sequence drafted with one, so a speculative sequence only shares blocks its draft can read.
 * Because each position's K/V is what a prefill of its prefix writes (the bitwise contract), outputs are the
 * same with and without the cache.
 */
final class Scheduler implements AutoCloseable {
    private final LoadedModel model;
    private final KvCache kv;
    private final PagedKvCache tables;
    private final Tokenizer tokenizer;
    private final int parallel;
    private final int maxQueue;
    /** Draft models draft the next step's drafts while the main model verifies ({@link #draftAheadTogether}). */
    private final boolean draftAhead;
    private final LinkedBlockingQueue<Sequence> inbox = new LinkedBlockingQueue<>();
    private final ArrayDeque<Sequence> waiting = new ArrayDeque<>();
    private final List<Sequence> active = new ArrayList<>();
    /** {@link #draftTogether}'s groups: the speculative sequences of each drafter, in batch order. */
    private final Map<Drafter, List<Sequence>> drafting = new LinkedHashMap<>();
    /**
     * The step whose draft lengths {@link #draftTogether} chooses, over the main model's pass costs by row count,
     * which {@link #step} records for every decoding pass (prefills ask one row's logits and are not recorded).
     */
    private final StepPlan plan;
    /** Submitted and not finished: active + waiting + in the inbox. */
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger activeCount = new AtomicInteger();
    private final AtomicLong completed = new AtomicLong(), cancelled = new AtomicLong(), rejected = new AtomicLong();
    private final AtomicLong generatedTokens = new AtomicLong(), passes = new AtomicLong(), prefixHitTokens = new AtomicLong();
    private final Thread thread;
    private volatile boolean closing;
    /** Set by {@link #drain}: no new sequences; the loop ends once none is in flight. */
    private volatile boolean draining;
    /** When the sequences still in flight during a drain end with {@link FinishReason#SHUTDOWN}. */
    private volatile long drainDeadlineNanos;
    /** Why the engine can no longer generate; null while it can. */
    private volatile String failure;

    Scheduler(LoadedModel model, KvCache kv, Tokenizer tokenizer, int parallel, int maxQueue, boolean draftAhead) {
        this.model = model;
        this.draftAhead = draftAhead;
        this.kv = kv;
        this.tables = kv.tables();
        this.tokenizer = tokenizer;
        this.parallel = parallel;
        this.maxQueue = maxQueue;
        this.plan = new StepPlan(new PassCostModel(parallel * (DraftPolicy.MAX_DRAFT + 1)));
        this.thread = Thread.ofPlatform().name("tandem-scheduler").daemon(true).unstarted(this::run);
        thread.start();
    }

    int blocksFor(int positions) {
        return (positions + tables.blockSize() - 1) / tables.blockSize();
    }

    int totalBlocks() { return tables.totalBlocks(); }

    /** Queues a sequence, or throws {@link EngineOverloadedException} when every slot and queue place is taken. */
    void submit(Sequence s) {
        String unusable = failure;
        if (unusable != null) throw new EngineFailedException(unusable);
        // Counted before the drain check: a drain that the check missed then sees this sequence in flight and waits for it.
        int n = inFlight.incrementAndGet();
        if (draining || closing) {
            inFlight.decrementAndGet();
            throw new EngineDrainingException();
        }
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
        return new EngineStats(running, Math.max(0, inFlight.get() - running), tables.blocksInUse(), blocks,
                completed.get(), cancelled.get(), rejected.get(), generatedTokens.get(), passes.get(),
                tables.cachedBlocks(), prefixHitTokens.get());
    }

    private void run() {
        try {
            while (!closing) {
                if (draining && inFlight.get() == 0) break;
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
        } catch (Throwable e) {
            // Not one sequence's fault (those are caught where each sequence's work runs): nothing would run later requests.
            markUnusable(e);
        } finally {
            String unusable = failure;
            RuntimeException closed = unusable != null ? new EngineFailedException(unusable) : new IllegalStateException("the engine was closed");
            inbox.drainTo(waiting);
            for (Sequence s : active) fail(s, closed);
            for (Sequence s : waiting) fail(s, closed);
            active.clear();
            waiting.clear();
        }
    }

    /** Why the engine can no longer generate, or null while it can. */
    String failure() { return failure; }

    /**
     * Takes no new sequences from now on; those in flight (running or queued) go on until {@code deadlineNanos}
     * ({@link System#nanoTime()}), then end with {@link FinishReason#SHUTDOWN}. A second call may only bring the
     * deadline forward. The loop ends once nothing is in flight: {@link #awaitDrained}.
     */
    synchronized void drain(long deadlineNanos) {
        if (!draining || deadlineNanos - drainDeadlineNanos < 0) drainDeadlineNanos = deadlineNanos;
        draining = true;
    }

    boolean isDraining() { return draining; }

    /** Waits up to {@code millis} for the loop to end after {@link #drain}; true when it has. */
    boolean awaitDrained(long millis) throws InterruptedException {
        thread.join(Math.max(1, millis));
        return !thread.isAlive();
    }

    /** Whether a drain's deadline has passed, so that what is still in flight ends now. */
    private boolean drainExpired(long now) {
        return draining && now - drainDeadlineNanos >= 0;
    }

    private void markUnusable(Throwable e) {
        if (failure == null) {
            failure = "the engine is unusable after " + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage())
                    + "; restart it";
        }
    }

    /**
     * Errors after which the JVM or this engine's state cannot be trusted: the virtual machine's own failures other
     * than running out of memory or stack (which the failed sequence's release undoes), classes that cannot
     * be linked or initialised (every later sequence would meet them too), and a device fault (the CUDA context is
     * lost: every later pass would fail).
     */
    static boolean leavesEngineUnusable(Throwable e) {
        return (e instanceof VirtualMachineError && !(e instanceof OutOfMemoryError) && !(e instanceof StackOverflowError))
                || (e instanceof LinkageError && !(e instanceof ExceptionInInitializerError))
                || e instanceof DeviceFaultException;
    }

    /** Cancelled or expired before they ran. */
    private void dropFinishedWaiting() {
        long now = System.nanoTime();
        boolean shutdown = drainExpired(now);
        for (Iterator<Sequence> it = waiting.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            FinishReason r = s.generation.isCancelRequested() ? FinishReason.CANCELLED : s.pastDeadline(now) ? FinishReason.DEADLINE
                    : shutdown ? FinishReason.SHUTDOWN : null;
            if (r != null) {
                it.remove();
                finish(s, r);
            }
        }
    }

    private void dropFinishedActive() {
        long now = System.nanoTime();
        boolean shutdown = drainExpired(now);
        for (Iterator<Sequence> it = active.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            FinishReason r = s.generation.isCancelRequested() ? FinishReason.CANCELLED : s.pastDeadline(now) ? FinishReason.DEADLINE
                    : shutdown ? FinishReason.SHUTDOWN : null;
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
            int seq = tables.createSequence();
            int cached;
            try {
                cached = tables.shareCachedPrefix(seq, s.prompt, s.prompt.length - 1, s.storages());
            } catch (RuntimeException e) {
                tables.release(seq);
                throw e;
            }
            if (!fits(s, cached)) {
                tables.release(seq);
                break;
            }
            waiting.poll();
            s.kvSequence = seq;
            s.cachedPromptTokens = cached;
            prefixHitTokens.addAndGet(cached);
            activeCount.set(active.size() + 1);
            try {
                s.prefillStartNanos = System.nanoTime();
                tables.reserve(s.kvSequence, s.prompt.length);
                ForwardResult r = model.forward(Batch.of(s.kvSequence, cached, Arrays.copyOfRange(s.prompt, cached, s.prompt.length), false), kv);
                passes.incrementAndGet();
                int first = s.choice.choose(r, 0, s.context, s.prompt.length);
                if (s.speculation != null) {
                    Sequence.Speculation spec = s.speculation;
                    s.step = new SpeculativeStep(spec.drafter(), spec.policy(), s.choice, tables, s.kvSequence);
                    s.step.prefill(s.prompt, cached, s.prompt.length);
                }
                s.prefillEndNanos = System.nanoTime();
                tables.publish(s.kvSequence, s.prompt, s.prompt.length, s.storages());
                FinishReason end = take(s, first, false);
                if (end == null) active.add(s);
                else finish(s, end);
            } catch (Throwable e) {
                fail(s, e);
            }
            activeCount.set(active.size());
        }
    }

    /**
     * Whether the pool can hold {@code s} (holding {@code cached} shared positions already) beside the active
     * sequences when each grows to all it may generate: the blocks held now, plus what every sequence may still
     * take. Cached blocks nobody holds count as room: allocation evicts them.
     */
    private boolean fits(Sequence s, int cached) {
        long mayTake = s.committedBlocks - blocksFor(cached);
        for (Sequence a : active) mayTake += Math.max(0, a.committedBlocks - blocksFor(tables.length(a.kvSequence)));
        return tables.blocksInUse() + mayTake <= tables.totalBlocks();
    }

    /**
     * One main-model pass for every active sequence: a plain sequence brings its last token (one row), a
     * speculative one {@code [last, d1..dk]} (k+1 rows) after drafting. The sequences that draft with one drafter
     * draft together ({@link #draftTogether}). Each sequence then reads only its own rows, which the bitwise
     * contract makes independent of the others; the sampled verifications the main model's device can finish are
     * decided there, in the same pass ({@link #deviceVerifications}). Draft-ahead runs while the pass is in flight.
     */
    private void step() {
        draftTogether();
        int rows = 0;
        for (Iterator<Sequence> it = active.iterator(); it.hasNext(); ) {
            Sequence s = it.next();
            try {
                tables.reserve(s.kvSequence, s.contextLength() + s.draftLength);
            } catch (Throwable e) {
                it.remove();
                fail(s, e);
                continue;
            }
            s.firstRow = rows;
            rows += s.draftLength + 1;
        }
        activeCount.set(active.size());
        if (active.isEmpty()) return;
        int[] tokens = new int[rows], positions = new int[rows], sequences = new int[rows], logitRows = new int[rows];
        for (Sequence s : active) {
            int last = s.contextLength() - 1;
            for (int j = 0, row = s.firstRow; j <= s.draftLength; j++, row++) {
                tokens[row] = s.context[last + j];
                positions[row] = last + j;
                sequences[row] = s.kvSequence;
                logitRows[row] = row;
            }
        }
        Batch batch = new Batch(tokens, positions, sequences, logitRows);
        int[] verdictOf = new int[active.size()];
        List<Verification> onDevice = deviceVerifications(verdictOf);
        ForwardResult r;
        List<SampledVerdict> verdicts = List.of();
        long t0 = System.nanoTime();
        try {
            if (onDevice.isEmpty()) {
                CompletionStage<ForwardResult> verification = model.forwardAsync(batch, kv);
                if (draftAhead) draftAheadTogether();   // while the main model's stream runs the pass
                r = verification.toCompletableFuture().join();
            } else {
                CompletionStage<SampledVerdicts> verification = model.deviceSampling().orElseThrow().verifySampledAsync(batch, kv, onDevice);
                if (draftAhead) draftAheadTogether();
                SampledVerdicts v = verification.toCompletableFuture().join();
                r = v.pass();
                verdicts = v.verdicts();
            }
        } catch (Throwable e) {
            for (Sequence s : active) fail(s, e instanceof CompletionException c && c.getCause() != null ? c.getCause() : e);
            active.clear();
            activeCount.set(0);
            return;
        }
        long passNanos = System.nanoTime() - t0;
        // With draft-ahead this is the longer of the pass and the drafting beside it: the step's critical path.
        plan.mainCosts().record(rows, passNanos);
        passes.incrementAndGet();
        List<Sequence> still = new ArrayList<>(active.size());
        for (int i = 0; i < active.size(); i++) {
            Sequence s = active.get(i);
            if (s.aheadFailure != null) {
                fail(s, s.aheadFailure);    // now that the pass which used its blocks is done
                continue;
            }
            FinishReason end;
            try {
                end = verdictOf[i] >= 0 ? emitAgreed(s, s.step.verified(verdicts.get(verdictOf[i]), s.context, s.contextLength(), passNanos))
                        : s.draftLength > 0 ? acceptDraft(s, r, passNanos) : takePlain(s, r);
            } catch (Throwable e) {
                fail(s, e);
                continue;
            }
            if (end == null) still.add(s);
            else finish(s, end);
        }
        active.clear();
        active.addAll(still);
        activeCount.set(active.size());
    }

    /**
     * Sets every active sequence's {@link Sequence#draftLength}: each speculative one plans its draft, and the
     * proposals of one drafter run in one {@link Drafter#proposeAll} — for a draft model, one pass per draft
     * position carries the rows of all its sequences, and a sequence whose draft ends early drops out of the later
     * passes. A drafter that fails fails only the sequences that drafted with it, their blocks freed.
     *
     * <p>Draft lengths are chosen for the batch, greedily: every sequence's own row is committed to the {@link #plan}
     * first, then the fixed drafts (the user asked for those lengths), then each adaptive sequence in batch order
     * chooses the k that maximises the step's expected tokens per second given everything committed before it — the
     * marginal cost of its k rows in this pass and of its tokens in the draft passes, against the tokens its
     * acceptance promises, its share of a draft pass assumed shared with the adaptive sequences still to decide
     * ({@link StepPlan}) — and commits it. Invariant: the plan's expected rate (tokens / time) never falls from one
     * adaptive choice to the next, since k = 0 leaves it as it was and a draft is chosen only when it raises it
     * (up to the shared draft passes' later riders, and probes aside: now and then a sequence drafts to re-measure, {@link DraftPolicy.Adaptive}). So a batch whose
     * pass is already compute-bound takes plain steps, and a lone sequence weighs only its own pass. Draft
     * length never changes what is generated, only how fast.
     */
    private void draftTogether() {
        drafting.clear();
        plan.begin();
        for (Sequence s : active) {
            s.draftLength = 0;
            s.proposal = null;
            plan.addRow();
        }
        for (Sequence s : active) if (s.step != null && s.step.weighsTheBatch()) s.step.willDecide(plan);
        // Index loops: a failed sequence leaves the list where it stood, and no iterator is made per step.
        for (int adaptive = 0; adaptive < 2; adaptive++) {
            for (int i = 0; i < active.size(); i++) {
                Sequence s = active.get(i);
                if (s.step == null || s.step.weighsTheBatch() != (adaptive == 1)) continue;
                try {
                    s.proposal = s.step.planDraft(s.context, s.contextLength(), s.maxTokens - s.generatedCount, plan);
                } catch (Throwable e) {
                    active.remove(i--);
                    fail(s, e);
                }
            }
        }
        for (Sequence s : active) {
            if (s.proposal != null) drafting.computeIfAbsent(s.step.drafter(), d -> new ArrayList<>()).add(s);
        }
        for (var group : drafting.entrySet()) {
            List<Drafter.Proposal> proposals = new ArrayList<>(group.getValue().size());
            for (Sequence s : group.getValue()) proposals.add(s.proposal);
            long t0 = System.nanoTime();
            try {
                group.getKey().proposeAll(proposals);
            } catch (Throwable e) {
                for (Sequence s : group.getValue()) {
                    active.remove(s);
                    fail(s, e);
                }
                continue;
            }
            long draftNanos = System.nanoTime() - t0;
            for (Sequence s : group.getValue()) s.draftLength = s.step.drafted(s.context, s.contextLength(), draftNanos);
        }
        // A step that ran nothing still has its draft: the one drafted ahead during the last verification, whose guess
        // came true (empty for a plain step).
        for (Sequence s : active) if (s.step != null && s.proposal == null) s.draftLength = s.step.drafted(s.context, s.contextLength(), 0);
        for (Sequence s : active) s.proposal = null;
        activeCount.set(active.size());
    }

    /**
     * Draft-ahead for every sequence that verifies a draft in the pass now enqueued: assuming the whole draft accepted,
     * each guesses the main model's next token, then drafts the next step's draft after it — both rounds batched per
     * drafter as in {@link #draftTogether}. A sequence whose guess comes true starts its next step with that draft
     * made; otherwise its verification rolls the guess back with the rejected tokens. A drafter that fails here marks
     * its sequences, which fail once the pass that uses their blocks has finished.
     */
    private void draftAheadTogether() {
        for (int round = 0; round < 2; round++) {
            drafting.clear();
            for (Sequence s : active) {
                if (s.draftLength == 0 || !s.step.draftsAhead() || s.aheadFailure != null) continue;
                try {
                    s.proposal = round == 0
                            ? s.step.planBonusGuess(s.context, s.contextLength(), s.maxTokens - s.generatedCount)
                            : s.step.planAhead(s.context, s.contextLength());
                } catch (Throwable e) {
                    s.aheadFailure = e;
                    continue;
                }
                if (s.proposal != null) drafting.computeIfAbsent(s.step.drafter(), d -> new ArrayList<>()).add(s);
            }
            for (var group : drafting.entrySet()) {
                List<Drafter.Proposal> proposals = new ArrayList<>(group.getValue().size());
                for (Sequence s : group.getValue()) proposals.add(s.proposal);
                try {
                    group.getKey().proposeAll(proposals);
                } catch (Throwable e) {
                    for (Sequence s : group.getValue()) s.aheadFailure = e;
                }
            }
            for (Sequence s : active) s.proposal = null;
        }
    }

    /**
     * The verifications this step's pass finishes on the main model's device, when it samples there
     * ({@link dev.tandem.runtime.DeviceSampling#verifySampledAsync(Batch, KvCache, List)}): one per speculative
     * sequence that samples without a penalty, its draft's q rows uploaded with the pass (the drafter drew them on the
     * host), its verdict's index in the result written into {@code verdictOf} at the sequence's index in
     * {@link #active} (-1 for the others). Empty when none qualifies: the ordinary pass runs.
     *
     * <p>The other sequences of the pass read its results on the host as they would alone: plain ones choose from
     * their row; greedy speculative ones verify against the argmax ids, which come back with every pass; penalised
     * ones need the context, which is on the host, and read their logits. So each sequence is verified where it would
     * be alone, with the same draws (the device's keyed by seed and position), and its tokens do not depend on what
     * else shares the pass.
     */
    private List<Verification> deviceVerifications(int[] verdictOf) {
        Arrays.fill(verdictOf, -1);
        if (model.deviceSampling().isEmpty()) return List.of();
        List<Verification> onDevice = new ArrayList<>();
        for (int i = 0; i < active.size(); i++) {
            Sequence s = active.get(i);
            if (s.draftLength == 0) continue;
            SampledDraft draft = s.step.sampledDraft();
            if (draft == null) continue;
            verdictOf[i] = onDevice.size();
            onDevice.add(new Verification(s.firstRow, s.draftLength, draft));
        }
        return onDevice;
    }

    private FinishReason takePlain(Sequence s, ForwardResult r) {
        int n = s.contextLength();
        int token = s.step == null ? s.choice.choose(r, s.firstRow, s.context, n) : s.step.plain(r, s.firstRow, s.context, n);
        return take(s, token, false);
    }

    /** Emits the draft tokens the main model agreed with, then its own token, stopping where the limits say. */
    private FinishReason acceptDraft(Sequence s, ForwardResult r, long passNanos) {
        return emitAgreed(s, s.step.verify(r, s.firstRow, s.context, s.contextLength(), passNanos));
    }

    /** Emits the {@code agreed} draft tokens of the last verification, then the main model's own token. */
    private FinishReason emitAgreed(Sequence s, int agreed) {
        FinishReason end = null;
        int emitted = 0;
        while (end == null && emitted < agreed) end = take(s, s.step.draftToken(emitted++), true);
        s.step.emitted(emitted);
        return end != null ? end : take(s, s.step.nextToken(), false);
    }

    /**
     * Takes a newly chosen token, {@code fromDraft} when it is a draft token the main model accepted; returns why the
     * sequence ends, or null when it goes on.
     */
    private FinishReason take(Sequence s, int token, boolean fromDraft) {
        if (s.generatedCount == 0) s.firstTokenNanos = System.nanoTime();
        if (!s.ignoreEndOfGeneration && tokenizer.isEndOfGeneration(token)) return FinishReason.STOP;
        s.addGenerated(token);
        generatedTokens.incrementAndGet();
        String shown = s.stops.feed(s.decoder.feed(token));
        s.text.append(shown);
        s.generation.publish(new GenerationEvent.Chunk(shown, new int[] {token}, fromDraft));
        if (s.stops.matched()) return FinishReason.STOP;
        if (s.generatedCount >= s.maxTokens) return FinishReason.LENGTH;
        return null;
    }

    private void finish(Sequence s, FinishReason reason) {
        if (!s.stops.matched()) {
            String rest = s.stops.feed(s.decoder.flush());
            if (!s.stops.matched()) rest += s.stops.flush();
            if (!rest.isEmpty()) {
                s.text.append(rest);
                s.generation.publish(new GenerationEvent.Chunk(rest, new int[0], false));
            }
        }
        GenerationStats stats = stats(s);     // before release: it reads the speculative step's counts
        keepComputedPrefix(s);
        release(s);
        if (reason == FinishReason.CANCELLED || reason == FinishReason.SHUTDOWN) cancelled.incrementAndGet();
        else completed.incrementAndGet();
        s.generation.publish(new GenerationEvent.Finished(reason, stats));
        s.generation.complete(new GenerationOutput(s.text.toString(), s.generatedTokens(), reason, stats));
    }

    /**
     * Ends one sequence with its failure and frees what it held. The loop calls this for whatever one sequence's
     * work throws, any {@link Throwable}, so that the others and later requests are still served; an error that
     * leaves the engine unusable ({@link #leavesEngineUnusable}) also marks it so, and later requests are refused.
     */
    private void fail(Sequence s, Throwable e) {
        if (leavesEngineUnusable(e)) markUnusable(e);
        try {
            release(s);
        } finally {
            s.generation.fail(e);
        }
    }

    /**
     * Publishes the full blocks of what {@code s}'s models wrote before it ends: the main model holds the context but
     * its last token, the draft model (when there is one) as far as it ran. Not for a failed sequence, whose last
     * pass may have left anything.
     */
    private void keepComputedPrefix(Sequence s) {
        if (s.kvSequence < 0 || !tables.cachesPrefixes()) return;
        int written = Math.min(tables.length(s.kvSequence), s.contextLength() - 1);
        if (s.step != null && s.speculation.storage() != 0) {
            tables.publish(s.kvSequence, s.context, Math.min(written, s.step.draftStoredLength()), s.storages());
        }
        tables.publish(s.kvSequence, s.context, written, Sequence.MAIN_STORAGE);
    }

    private void release(Sequence s) {
        if (s.step != null) {
            s.step.close();
            s.step = null;
        }
        if (s.kvSequence >= 0) {
            tables.release(s.kvSequence);
            s.kvSequence = -1;
        }
        inFlight.decrementAndGet();
    }

    private static GenerationStats stats(Sequence s) {
        long end = System.nanoTime();
        int count = s.generatedCount;
        double ttft = count == 0 && s.firstTokenNanos == 0 ? 0 : (s.firstTokenNanos - s.submittedNanos) / 1e9;
        double decodeSeconds = (end - s.firstTokenNanos) / 1e9;
        double tps = count > 1 && decodeSeconds > 0 ? (count - 1) / decodeSeconds : count == 1 && ttft > 0 ? 1 / ttft : 0;
        boolean prefilled = s.prefillEndNanos != 0;
        double promptMillis = prefilled ? (s.prefillEndNanos - s.prefillStartNanos) / 1e6 : 0;
        double generationMillis = prefilled ? (end - s.prefillEndNanos) / 1e6 : 0;
        SpeculativeStep d = s.step;
        String draft = s.speculation == null ? null : s.speculation.name();
        if (d == null) {
            return new GenerationStats(s.prompt.length, count, ttft, tps, 0, 0, 0, 0, draft, s.cachedPromptTokens,
                    promptMillis, generationMillis, 0, NO_DRAFTS, 0, 0);
        }
        return new GenerationStats(s.prompt.length, count, ttft, tps, (int) d.draftedTokens(), (int) d.acceptedTokens(),
                (int) d.rejectedTokens(), (int) d.ignoredTokens(), draft, s.cachedPromptTokens,
                promptMillis, generationMillis, d.verificationPasses(), d.acceptedLengthHistogram(), d.draftMillis(), d.verifyMillis());
    }

    /** The accepted-length histogram of a generation that verified no draft: one bucket, for zero accepted. */
    private static final int[] NO_DRAFTS = new int[1];

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
