package dev.tandem.decode;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.DeviceSampling.SampledVerdict;
import dev.tandem.runtime.PagedKvCache;

import java.util.concurrent.CompletionStage;

/**
 * Speculative decoding of one sequence: each step a {@link SpeculativeStep} drafts d1..dk, the main model runs
 * {@code [last, d1..dk]} in one pass, and the step's {@link AcceptanceRule} decides which draft tokens stay and
 * which token of the main model's own follows. Greedy output is identical to {@link PlainGenerator}'s, token for
 * token; sampled output has the main model's distribution. Sampling without a repetition penalty on a main model
 * that samples on its device ({@link LoadedModel#deviceSampling}), the verification finishes there
 * ({@link DeviceSampling#verifySampledAsync}): the draft's distributions go up, the verdict comes back, and the
 * draws are keyed by (seed, position), so a seed gives one output, not the CPU's.
 *
 * <p>State between steps, with n = context length and last = context[n-1]: the main model's K/V holds
 * positions [0, n-1) and the shared block tables are truncated to that; the drafter tracks its own valid prefix.
 */
public final class SpeculativeGenerator implements Generator {
    private final LoadedModel main;
    private final Drafter drafter;
    private final DraftPolicy policy;
    private final SamplerSettings settings;

    public SpeculativeGenerator(LoadedModel main, Drafter drafter, DraftPolicy policy, SamplerSettings settings) {
        this.main = main;
        this.drafter = drafter;
        this.policy = policy;
        this.settings = settings;
    }

    @Override
    public GenerationResult generate(int[] prompt, GenerationLimits limits, TokenListener listener) {
        int vocabulary = main.config().vocabularySize();
        int draftMax = policy.draftMax();
        PlainGenerator.checkTokens(prompt, vocabulary);
        int context = Math.min(main.config().contextLength(), drafter.contextLength());
        int maxTokens = TokenSink.clampToContext(prompt.length, limits.maxTokens(), context);
        StatsRecorder stats = new StatsRecorder(prompt.length, draftMax);
        // Scratch past the end: a draft of k, then the main model's own token after it.
        TokenSink out = new TokenSink(prompt, maxTokens, draftMax + 1, limits, listener, stats);
        PagedKvCache tables = new PagedKvCache(PlainGenerator.BLOCK_SIZE, PlainGenerator.blocksFor(prompt.length + maxTokens + draftMax));
        TokenChoice choice = new TokenChoice(settings, vocabulary);
        try (KvCache kv = main.createKvCache(tables)) {
            int seq = tables.createSequence();
            try (SpeculativeStep step = new SpeculativeStep(drafter, policy, choice, tables, seq, stats)) {
                new Run(kv, tables, seq, step, choice, out, stats, draftMax).decode(prompt);
            } finally {
                tables.release(seq);
            }
        }
        return out.result(stats.finish());
    }

    /** The state of one generation. */
    private final class Run {
        final KvCache kv;
        final PagedKvCache tables;
        final int seq;
        final SpeculativeStep step;
        final TokenChoice choice;
        final TokenSink out;
        final StatsRecorder stats;
        final BatchArrays batches;
        /** Each step alone, over the main model's pass costs, which this run records as it runs the passes. */
        final StepPlan plan;
        /** Sampling without a penalty and a main model that samples on its device: verify there. */
        final boolean deviceSampling;

        Run(KvCache kv, PagedKvCache tables, int seq, SpeculativeStep step, TokenChoice choice, TokenSink out,
            StatsRecorder stats, int draftMax) {
            this.kv = kv;
            this.tables = tables;
            this.seq = seq;
            this.step = step;
            this.choice = choice;
            this.out = out;
            this.stats = stats;
            this.batches = new BatchArrays(seq, draftMax + 1);
            this.plan = new StepPlan(new PassCostModel(draftMax + 1));
            this.deviceSampling = settings.samplesWithoutContext() && main.deviceSampling().isPresent();
        }

        void decode(int[] prompt) {
            // Prefill: the main pass may run ahead (forwardAsync) while the drafter runs the prompt too.
            tables.reserve(seq, prompt.length);
            CompletionStage<ForwardResult> prefill = main.forwardAsync(batches.of(prompt, 0, prompt.length, 0, false), kv);
            step.prefill(prompt, prompt.length);
            ForwardResult r = join(prefill);
            stats.prefillDone();
            if (!out.emit(choice.choose(r, 0, out.context, out.length), false)) return;
            while (step()) { }
        }

        /** One draft-and-verify step (or a plain step when nothing was drafted); false when generation stops. */
        boolean step() {
            int[] context = out.context;
            int n = out.length;
            int k = step.propose(context, n, out.remaining(), plan);
            long t0 = System.nanoTime();
            tables.reserve(seq, n + k);
            Batch batch = batches.of(context, n - 1, k + 1, n - 1, k > 0);
            int agreed;
            CompletionStage<SampledVerdict> onDevice = k > 0 && deviceSampling ? main.deviceSampling().get().verifySampledAsync(batch, kv, step.sampledDraft()) : null;
            if (onDevice != null) {
                SampledVerdict verdict = onDevice.toCompletableFuture().join();
                long passNanos = System.nanoTime() - t0;
                plan.mainCosts().record(k + 1, passNanos);
                agreed = step.verified(verdict, context, n, passNanos);
            } else {
                ForwardResult r = join(main.forwardAsync(batch, kv));
                long passNanos = System.nanoTime() - t0;
                plan.mainCosts().record(k + 1, passNanos);
                if (k == 0) return out.emit(step.plain(r, 0, context, n), false);
                agreed = step.verify(r, 0, context, n, passNanos);
            }
            // Emit the agreed tokens and the main model's own token, stopping early if the limits say so.
            int emitted = 0;
            boolean go = true;
            while (go && emitted < agreed) go = out.emit(step.draftToken(emitted++), true);
            step.emitted(emitted);
            return go && out.emit(step.nextToken(), false);
        }
    }

    private static ForwardResult join(CompletionStage<ForwardResult> stage) {
        return stage.toCompletableFuture().join();
    }
}
