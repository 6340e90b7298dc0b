package dev.tandem.decode;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.DeviceSampling.SampledDraft;
import dev.tandem.runtime.DeviceSampling.SampledVerdict;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

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
 * other. Every draw comes from the sequence's {@link TokenChoice}, in program order, so a seed gives one output.
 *
 * <p>Lossless as {@link SpeculativeGenerator} is: the drafts come from {@link ModelDrafter}'s proposal (greedy:
 * the draft's argmax; sampling: draws from its chain), independent of the main model's draws, and the same
 * {@link AcceptanceRule} decides, so sampled output keeps the main model's distribution and greedy output equals
 * plain decoding. Reusing a guess only when it equals the main model's own token changes which drafts get
 * verified, not the rule.
 *
 * <p>Sampling without a repetition penalty, the verification finishes where the main model's logits are when the
 * main model samples on its device ({@link LoadedModel#deviceSampling}, a CUDA model): the draft's distributions
 * go to the device and only the accepted length and the next token come back. Its draws are keyed by (seed,
 * position), not taken from this generator's random, so a seed still gives one output, a different one than on the
 * CPU. Then a draft model that samples on its device too draws there ({@link DeviceSampling#sampleDraftAsync}):
 * its distributions stay there as kept rows the verification reads in place, and per drafted token only the token
 * and its top probability cross.
 *
 * <p>A draft pass that fails while a verification is in flight first waits for the verification (its result
 * dropped), so that the K/V caches are closed only when no pass uses them.
 *
 * <p>Positions: the main model's K/V holds [0, n-1) before a step; the drafter tracks its own valid prefix. The
 * draft-ahead writes the draft's K/V at positions up to n+k+j-1, beyond what the verification writes
 * (n-1 .. n+k-1); the drafter reserves the tables that far before its passes, and they are truncated to n+a
 * after a rejection.
 */
public final class DraftAheadGenerator implements Generator {
    private final LoadedModel main, draft;
    private final DraftPolicy.Fixed policy;
    private final int draftMax;
    private final SamplerSettings settings;

    /** Drafts of {@code draftMax} tokens (fewer only near the token limit): p-min 0, draft-min 0. */
    public DraftAheadGenerator(LoadedModel main, LoadedModel draft, int draftMax, SamplerSettings settings) {
        this(main, draft, DraftPolicy.Fixed.always(draftMax), settings);
    }

    /**
     * Drafts of up to the policy's draft-max tokens, each stopping where the draft's top probability falls below
     * its p-min; greedy decoding takes a plain step instead of verifying a draft shorter than its draft-min
     * (sampling verifies short drafts too, as {@link SpeculativeStep} does, since discarding them would bias the
     * output).
     */
    public DraftAheadGenerator(LoadedModel main, LoadedModel draft, DraftPolicy.Fixed policy, SamplerSettings settings) {
        this.main = main;
        this.draft = draft;
        this.policy = policy;
        this.draftMax = policy.draftMax();
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
        TokenChoice choice = new TokenChoice(settings, vocabulary);
        try (KvCache mainKv = main.createKvCache(tables)) {
            int seq = tables.createSequence();
            try (Drafter.Session drafts = new ModelDrafter(draft).open(
                    new Drafter.Context(tables, seq, vocabulary, settings, choice.random(), draftMax))) {
                new Run(mainKv, drafts, tables, seq, choice, out, stats, vocabulary).decode(prompt);
            } finally {
                tables.release(seq);
            }
        }
        return out.result(stats.finish());
    }

    /** The state of one generation. */
    private final class Run {
        final KvCache mainKv;
        final Drafter.Session drafts;
        final PagedKvCache tables;
        final int seq, vocabulary;
        final TokenChoice choice;
        final AcceptanceRule rule;
        final TokenSink out;
        final StatsRecorder stats;
        final BatchArrays mainBatches;
        /** Two draft buffers: the one being verified and the one the draft-ahead fills. */
        final Draft[] buffers;
        /** The draft-ahead's guess of the main model's next token (its q is never used: it is not verified). */
        final Draft bonusGuess;
        /** The draft being verified next; {@code kept}: it is a guess already drafted, not to be drafted again. */
        Draft current;
        boolean kept;
        /** Sampling, no penalty, a main model that samples on its device: where the verification runs; null: on the host. */
        final DeviceSampling verifier;
        /** The draft model's sampling, when the drafts' distributions stay on its device as kept rows; else null. */
        DeviceSampling keptBy;
        /** The current draft's q rows, dense, for the device (allocated on the first sampled verification). */
        float[] qRows;
        /** The last verification's outcome: agreed draft tokens, then the main model's next token. */
        int agreed, next;

        Run(KvCache mainKv, Drafter.Session drafts, PagedKvCache tables, int seq, TokenChoice choice, TokenSink out,
            StatsRecorder stats, int vocabulary) {
            this.mainKv = mainKv;
            this.drafts = drafts;
            this.tables = tables;
            this.seq = seq;
            this.choice = choice;
            this.rule = new AcceptanceRule(choice);
            this.out = out;
            this.stats = stats;
            this.vocabulary = vocabulary;
            this.mainBatches = new BatchArrays(seq, draftMax + 1);
            this.buffers = new Draft[] {new Draft(draftMax, vocabulary), new Draft(draftMax, vocabulary)};
            this.bonusGuess = new Draft(1, vocabulary);
            this.current = buffers[0];
            this.verifier = settings.samplesWithoutContext() ? main.deviceSampling().orElse(null) : null;
            if (verifier != null) draft.deviceSampling().ifPresent(this::keepDraftsOnDevice);
        }

        void decode(int[] prompt) {
            tables.reserve(seq, prompt.length);
            CompletionStage<ForwardResult> prefill = main.forwardAsync(mainBatches.of(prompt, 0, prompt.length, 0, false), mainKv);
            try {
                drafts.prefill(prompt, prompt.length);
            } catch (RuntimeException | Error e) {
                awaitQuietly(prefill);
                throw e;
            }
            ForwardResult r = join(prefill);
            stats.prefillDone();
            if (!out.emit(choice.choose(r, 0, out.context, out.length), false)) return;
            while (step()) { }
        }

        boolean step() {
            int[] context = out.context;
            int n = out.length, remaining = out.remaining();
            // A draft of k leads to k+1 tokens at most: keep k below the tokens still allowed.
            int limit = remaining - 1;
            if (limit <= 0) return plainStep(n);
            if (!kept) {
                // No guess was kept: draft now, positions n-1 .. n+k-2 of the draft's K/V.
                long t0 = System.nanoTime();
                current = buffers[0];
                drafts.propose(context, n, Math.min(draftMax, limit), policy.draftPMin(), current);
                stats.draftNanos += System.nanoTime() - t0;
            }
            kept = false;
            // A kept guess's draft may be empty (it stopped at p-min): drafting again from this context would stop too.
            int k = Math.min(limit, current.size());
            stats.drafted += k;
            if (k == 0 || (k < policy.draftMin() && settings.isGreedy())) {
                stats.ignored += k;
                return plainStep(n);
            }
            for (int i = 0; i < k; i++) context[n + i] = current.token(i);

            tables.reserve(seq, n + k);
            long t0 = System.nanoTime();
            Batch batch = mainBatches.of(context, n - 1, k + 1, n - 1, true);
            CompletionStage<SampledVerdict> sampled = verifier != null ? verifier.verifySampledAsync(batch, mainKv, sampledDraft(k)) : null;
            CompletionStage<ForwardResult> verification = sampled == null ? main.forwardAsync(batch, mainKv) : null;
            // While the main model verifies: assume all k accepted, guess its next token e1 and draft e2.. past it.
            // p-min applies to e2.., the next draft; e1 stands for the main model's own token, which is not drafted.
            int ahead = Math.min(draftMax, remaining - (k + 1) - 1);
            Draft guess = current == buffers[0] ? buffers[1] : buffers[0];
            guess.clear();
            bonusGuess.clear();
            if (ahead >= 1) {
                try {
                    long d0 = System.nanoTime();
                    drafts.propose(context, n + k, 1, 0f, bonusGuess);
                    drafts.propose(context, n + k + 1, ahead, policy.draftPMin(), guess);
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
                agreed = rule.accept(join(verification), 0, context, n, k, current, 0);
                next = context[n + agreed];
            }
            stats.verifyNanos += System.nanoTime() - t0;

            if (agreed == k && bonusGuess.size() > 0 && bonusGuess.token(0) == next) {
                // The guess was right: the draft's K/V already holds e1 and the guess's tokens but the last, the next draft is ready.
                current = guess;
                kept = true;
            } else {
                tables.truncate(seq, n + agreed);
                drafts.rollback(n + agreed);
            }
            int emitted = 0;
            boolean go = true;
            while (go && emitted < agreed) go = out.emit(context[n + emitted++], true);
            stats.verified(k, agreed, emitted);
            return go && out.emit(next, false);
        }

        /**
         * The main model verifies on its device and the draft model samples on its own: the drafts keep their
         * distributions there, in rows apart per buffer: the two drafts, then the bonus guess.
         */
        void keepDraftsOnDevice(DeviceSampling drafting) {
            drafting.keepDraftRows(2 * draftMax + 1);
            keptBy = drafting;
            buffers[0].keepOnDevice(0);
            buffers[1].keepOnDevice(draftMax);
            bonusGuess.keepOnDevice(2 * draftMax);
        }

        /**
         * The current draft's k distributions for the main model's device: the draft's kept rows when it drew
         * there, else dense rows uploaded with the pass; with the sampler chain and seed.
         */
        SampledDraft sampledDraft(int k) {
            if (current.onDevice()) {
                return SampledDraft.kept(keptBy, current.keptRows(), settings.temperature(), settings.topK(), settings.topP(), settings.minP(), settings.seed());
            }
            if (qRows == null) qRows = new float[draftMax * vocabulary];
            current.denseRows(k, qRows, vocabulary);
            return new SampledDraft(qRows, settings.temperature(), settings.topK(), settings.topP(), settings.minP(), settings.seed());
        }

        boolean plainStep(int n) {
            tables.reserve(seq, n);
            ForwardResult r = join(main.forwardAsync(mainBatches.of(out.context, n - 1, 1, n - 1, false), mainKv));
            tables.truncate(seq, n);
            drafts.rollback(n);
            kept = false;
            return out.emit(choice.choose(r, 0, out.context, n), false);
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
