package dev.tandem.decode;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.LoadedModel.SampledDraft;
import dev.tandem.runtime.LoadedModel.SampledVerdict;
import dev.tandem.runtime.PagedKvCache;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CompletionStage;

/**
 * Speculative decoding with a draft model that drafts ahead: while the main model verifies
 * {@code [last, d1..dk]}, the draft already runs d_k and drafts on, assuming every d_i is accepted. It guesses
 * the main model's bonus token e1 and proposes e2..e_{j+1} after it. When the main model accepts all k and its
 * own next token is e1, the next step's draft is e2..e_{j+1}, already made; otherwise the guess is dropped and
 * one {@link PagedKvCache#truncate} of the shared block tables rolls both models back.
 *
 * <p>The overlap comes from {@link LoadedModel#forwardAsync}: the verification pass is enqueued and this thread
 * runs the draft's passes before joining it, so on a CUDA backend the main model's stream and the draft's run
 * at once. On a backend whose forwardAsync is synchronous (the CPU) the same code runs the two one after the
 * other. Every draw comes from one seeded random, in program order, so a seed gives one output.
 *
 * <p>Lossless as {@link SpeculativeGenerator} is: drafted tokens are draws from the draft's chain (greedy: its
 * argmax), independent of the main model's draws, so accepting with min(1, p/q) and replacing from
 * norm(max(0, p − q)) keeps the main model's distribution, and greedy output equals plain decoding. Reusing a
 * guess only when it equals the main model's own token changes which drafts get verified, not the rule.
 *
 * <p>Sampling without a repetition penalty, the verification may finish where the main model's logits are
 * ({@link LoadedModel#verifySampledAsync}, a CUDA model): the draft's distributions go to the device and only
 * the accepted length and the next token come back. Its draws are keyed by (seed, position), not taken from this
 * generator's random, so a seed still gives one output, a different one than on the CPU. A model that cannot
 * (the CPU) answers null and the step verifies on the host.
 *
 * <p>A draft pass that fails while a verification is in flight first waits for the verification (its result
 * dropped), so that the K/V caches are closed only when no pass uses them.
 *
 * <p>Positions: the main model's K/V holds [0, n-1) before a step, the draft's [0, valid). The draft-ahead
 * writes the draft's K/V at positions up to n+k+j-1, beyond what the verification writes (n-1 .. n+k-1); the
 * tables are reserved that far before the draft's passes and truncated to n+a after a rejection.
 */
public final class DraftAheadGenerator implements Generator {
    private final LoadedModel main, draft;
    private final int draftMax;
    private final SamplerSettings settings;

    /** Drafts of {@code draftMax} tokens (fewer only near the token limit). */
    public DraftAheadGenerator(LoadedModel main, LoadedModel draft, int draftMax, SamplerSettings settings) {
        if (draftMax < 1) throw new IllegalArgumentException("draft-max must be at least 1, got " + draftMax);
        this.main = main;
        this.draft = draft;
        this.draftMax = draftMax;
        this.settings = settings;
    }

    @Override
    public GenerationResult generate(int[] prompt, GenerationLimits limits, TokenListener listener) {
        int vocabulary = main.config().vocabularySize();
        PlainGenerator.checkTokens(prompt, vocabulary);
        int context = Math.min(main.config().contextLength(), draft.config().contextLength());
        int maxTokens = TokenSink.clampToContext(prompt.length, limits.maxTokens(), context);
        StatsRecorder stats = new StatsRecorder(prompt.length, draftMax);
        // Scratch past the end: a draft of k, then the ahead guess and its draft (k + 1 + draftMax + 1).
        TokenSink out = new TokenSink(prompt, maxTokens, 2 * draftMax + 2, limits, listener, stats);
        PagedKvCache tables = new PagedKvCache(PlainGenerator.BLOCK_SIZE, PlainGenerator.blocksFor(prompt.length + maxTokens + 2 * draftMax + 2));
        try (KvCache mainKv = main.createKvCache(tables); KvCache draftKv = draft.createKvCache(tables)) {
            int seq = tables.createSequence();
            try {
                new Run(mainKv, draftKv, tables, seq, out, stats, vocabulary).decode(prompt);
            } finally {
                tables.release(seq);
            }
        }
        return out.result(stats.finish());
    }

    /** The state of one generation. */
    private final class Run {
        final KvCache mainKv, draftKv;
        final PagedKvCache tables;
        final int seq, vocabulary;
        final TokenSink out;
        final StatsRecorder stats;
        final SplittableRandom random = new SplittableRandom(settings.seed());
        final BatchArrays mainBatches, draftBatches;
        final Sampler sampler, draftSampler;
        final Distribution p, residual;
        final float[] logits, draftLogits;
        /** Draft ids below this are shared with the main model; the draft's logits beyond are masked. */
        final int shared;
        /** Greedy without a penalty: choices are the rows' argmax ids (on CUDA, no logits cross to the host). */
        final boolean argmaxOnly;
        /** Two draft buffers: the one being verified and the one the draft-ahead fills. */
        final Draft[] buffers;
        /** The draft being verified: {@code current} tokens [offset, offset + size). */
        Draft current;
        int offset, size;
        /** Positions [0, valid) of the draft's K/V hold the context's tokens. */
        int valid;
        /** Sampling, no penalty: try the main model's own verification ({@link LoadedModel#verifySampledAsync}) until it declines. */
        boolean deviceSampling;
        /** The current draft's q rows, dense, for the device (allocated on the first sampled verification). */
        float[] qRows;
        /** The last verification's outcome: agreed draft tokens, then the main model's next token. */
        int agreed, next;

        Run(KvCache mainKv, KvCache draftKv, PagedKvCache tables, int seq, TokenSink out, StatsRecorder stats, int vocabulary) {
            this.mainKv = mainKv;
            this.draftKv = draftKv;
            this.tables = tables;
            this.seq = seq;
            this.out = out;
            this.stats = stats;
            this.vocabulary = vocabulary;
            this.mainBatches = new BatchArrays(seq, draftMax + 1);
            this.draftBatches = new BatchArrays(seq, draftMax + 1);
            this.sampler = new Sampler(settings, vocabulary);
            this.draftSampler = new Sampler(settings, vocabulary);
            this.p = new Distribution(vocabulary);
            this.residual = new Distribution(vocabulary);
            int draftVocabulary = draft.config().vocabularySize();
            this.logits = new float[vocabulary];
            this.draftLogits = new float[Math.max(draftVocabulary, vocabulary)];
            this.shared = Math.min(draftVocabulary, vocabulary);
            this.argmaxOnly = settings.isGreedy() && (settings.repetitionPenalty() == 1f || settings.repeatLastN() == 0);
            this.buffers = new Draft[] {new Draft(draftMax + 1, vocabulary), new Draft(draftMax + 1, vocabulary)};
            this.current = buffers[0];
            this.deviceSampling = !settings.isGreedy() && (settings.repetitionPenalty() == 1f || settings.repeatLastN() == 0);
        }

        void decode(int[] prompt) {
            tables.reserve(seq, prompt.length);
            CompletionStage<ForwardResult> prefill = main.forwardAsync(mainBatches.of(prompt, 0, prompt.length, 0, false), mainKv);
            try {
                join(draft.forwardAsync(draftBatches.of(prompt, 0, prompt.length, 0, false), draftKv));
            } catch (RuntimeException | Error e) {
                awaitQuietly(prefill);
                throw e;
            }
            valid = prompt.length;
            ForwardResult r = join(prefill);
            stats.prefillDone();
            if (!out.emit(choose(r, 0, out.length), false)) return;
            while (step()) { }
        }

        boolean step() {
            int[] context = out.context;
            int n = out.length, remaining = out.remaining();
            // A draft of k leads to k+1 tokens at most: keep k below the tokens still allowed.
            int k = Math.min(remaining - 1, size > 0 ? size : draftMax);
            if (k <= 0) return plainStep(n);
            if (size == 0) {
                // No guess was kept: draft now, positions n-1 .. n+k-2 of the draft's K/V.
                tables.reserve(seq, n + k - 1);
                long t0 = System.nanoTime();
                current = buffers[0];
                offset = 0;
                propose(context, n, k, current);
                stats.draftNanos += System.nanoTime() - t0;
            }
            for (int i = 0; i < k; i++) context[n + i] = current.token(offset + i);
            stats.drafted += k;

            tables.reserve(seq, n + k);
            long t0 = System.nanoTime();
            Batch batch = mainBatches.of(context, n - 1, k + 1, n - 1, true);
            CompletionStage<SampledVerdict> sampled = deviceSampling ? main.verifySampledAsync(batch, mainKv, sampledDraft(k)) : null;
            deviceSampling = sampled != null;
            CompletionStage<ForwardResult> verification = sampled == null ? main.forwardAsync(batch, mainKv) : null;
            // While the main model verifies: assume all k accepted, guess its next token and draft past it.
            int ahead = Math.min(draftMax, remaining - (k + 1) - 1);
            Draft guess = current == buffers[0] ? buffers[1] : buffers[0];
            guess.clear();
            if (ahead >= 1) {
                try {
                    tables.reserve(seq, n + k + ahead);
                    long d0 = System.nanoTime();
                    propose(context, n + k, ahead + 1, guess);
                    stats.draftNanos += System.nanoTime() - d0;
                } catch (RuntimeException | Error e) {
                    awaitQuietly(sampled != null ? sampled : verification);
                    throw e;
                }
            }
            if (sampled != null) {
                SampledVerdict v = join(sampled);
                agreed = v.accepted();
                next = v.next();
            } else {
                verifyOnHost(join(verification), context, n, k);
            }
            stats.verifyNanos += System.nanoTime() - t0;

            if (agreed == k && guess.size() > 0 && guess.token(0) == next) {
                // The guess was right: the draft's K/V already holds positions up to n+k+ahead-1, the next draft is ready.
                current = guess;
                offset = 1;
                size = guess.size() - 1;
            } else {
                tables.truncate(seq, n + agreed);
                valid = Math.min(valid, n + agreed);
                size = 0;
            }
            int emitted = 0;
            boolean go = true;
            while (go && emitted < agreed) go = out.emit(context[n + emitted++], true);
            stats.verified(k, agreed, emitted);
            return go && out.emit(next, false);
        }

        /** Sets {@link #agreed} and {@link #next} from the verification's k+1 rows of logits. */
        void verifyOnHost(ForwardResult r, int[] context, int n, int k) {
            // Row i is p for the token after context[n-1+i]; its penalty window is context[0, n+i).
            agreed = 0;
            next = -1;
            for (; agreed < k; agreed++) {
                int d = current.token(offset + agreed);
                if (argmaxOnly) {
                    int m = r.argmax(agreed);
                    if (m == d) continue;
                    next = m;
                    break;
                }
                r.copyLogits(agreed, logits);
                sampler.fill(logits, vocabulary, context, n + agreed, p);
                Distribution q = current.q(offset + agreed);
                if (random.nextDouble() * q.p(d) < p.p(d)) continue;      // accept with probability min(1, p/q)
                residual.setResidual(p, q);
                next = residual.sample(random);
                break;
            }
            if (next < 0) next = choose(r, k, n + k);                    // all accepted: bonus from p_k
        }

        /** The current draft's k distributions as dense rows, with the sampler chain and seed, for the main model's device. */
        SampledDraft sampledDraft(int k) {
            if (qRows == null) qRows = new float[draftMax * vocabulary];
            for (int i = 0; i < k; i++) {
                Distribution q = current.q(offset + i);
                int row = i * vocabulary;
                Arrays.fill(qRows, row, row + vocabulary, 0f);
                for (int j = 0; j < q.size(); j++) qRows[row + q.token(j)] = q.p(q.token(j));
            }
            return new SampledDraft(qRows, settings.temperature(), settings.topK(), settings.topP(), settings.minP(), settings.seed());
        }

        boolean plainStep(int n) {
            tables.reserve(seq, n);
            ForwardResult r = join(main.forwardAsync(mainBatches.of(out.context, n - 1, 1, n - 1, false), mainKv));
            tables.truncate(seq, n);
            valid = Math.min(valid, n);
            size = 0;
            return out.emit(choose(r, 0, n), false);
        }

        /**
         * Drafts {@code max} tokens continuing {@code context[0, n)} into {@code into} and {@code context[n, n+max)}:
         * first the context tokens the draft has not run (at least context[n-1], for its logits), then one pass per
         * drafted token but the last. The tables must cover position n+max-2.
         */
        void propose(int[] context, int n, int max, Draft into) {
            into.clear();
            int from = Math.min(valid, n - 1);
            ForwardResult r = join(draft.forwardAsync(draftBatches.of(context, from, n - from, from, false), draftKv));
            valid = n;
            for (int i = 0; ; i++) {
                Distribution q = into.next();
                int token;
                if (settings.isGreedy()) {
                    if (shared == draft.config().vocabularySize()) {
                        token = r.argmax(0);
                    } else {
                        r.copyLogits(0, draftLogits);
                        token = Sampler.argmax(draftLogits, shared);
                    }
                    q.setOneHot(token);
                } else {
                    r.copyLogits(0, draftLogits);
                    draftSampler.fill(draftLogits, shared, context, n + i, q);
                    token = q.sample(random);
                }
                into.push(token);
                context[n + i] = token;
                if (i + 1 == max) return;
                r = join(draft.forwardAsync(draftBatches.of(context, n + i, 1, n + i, false), draftKv));
                valid = n + i + 1;
            }
        }

        /** The main model's token from result row {@code row}, after {@code context[0, contextLength)}. */
        int choose(ForwardResult r, int row, int contextLength) {
            if (argmaxOnly) return r.argmax(row);
            r.copyLogits(row, logits);
            sampler.fill(logits, vocabulary, out.context, contextLength, p);
            return p.sample(random);
        }
    }

    private static <T> T join(CompletionStage<T> stage) {
        return stage.toCompletableFuture().join();
    }

    /** Waits for a pass whose result no longer matters (a failure elsewhere is being reported). */
    private static void awaitQuietly(CompletionStage<?> stage) {
        try {
            stage.toCompletableFuture().join();
        } catch (RuntimeException ignored) {
            // the failure being rethrown is the one to report
        }
    }
}
