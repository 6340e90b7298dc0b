package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

import java.util.SplittableRandom;
import java.util.concurrent.CompletionStage;

/**
 * Speculative decoding: a {@link Drafter} proposes d1..dk, the main model runs {@code [last, d1..dk]} in one
 * pass, and the main model's own choices decide. Row i of that pass is the main model's distribution p_i for the
 * token after d_i (d_0 = last); each d_i is accepted with probability min(1, p_i(d_i) / q_i(d_i)), the first
 * rejected one is replaced by a draw from norm(max(0, p − q)), and after a fully accepted draft a bonus token is
 * drawn from p_k. Greedy settings make p and q one-hot, which reduces this to "accept while the draft equals
 * the main argmax, then emit the main argmax": output identical to {@link PlainGenerator}, token for token.
 *
 * <p>State between steps, with n = context length and last = context[n-1]: the main model's K/V holds
 * positions [0, n-1) and the shared block tables are truncated to that; the drafter tracks its own valid prefix.
 * Rollback of rejected tokens is that one truncate — no copy.
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
        TokenSink out = new TokenSink(prompt, maxTokens, draftMax + 1, limits, listener, stats);
        PagedKvCache tables = new PagedKvCache(PlainGenerator.BLOCK_SIZE, PlainGenerator.blocksFor(prompt.length + maxTokens + draftMax));
        SplittableRandom random = new SplittableRandom(settings.seed());
        try (KvCache kv = main.createKvCache(tables)) {
            int seq = tables.createSequence();
            try (Drafter.Session drafts = drafter.open(new Drafter.Context(tables, seq, vocabulary, settings, random, draftMax))) {
                new Run(kv, tables, seq, drafts, out, stats, random, vocabulary, draftMax).decode(prompt);
            } finally {
                tables.release(seq);
            }
        }
        return out.result(stats.finish());
    }

    /** The buffers and state of one generation. */
    private final class Run {
        final KvCache kv;
        final PagedKvCache tables;
        final int seq, vocabulary;
        final Drafter.Session drafts;
        final TokenSink out;
        final StatsRecorder stats;
        final SplittableRandom random;
        final BatchArrays batches;
        final Sampler sampler;
        final Distribution p, residual;
        final Draft draft;
        final float[] logits;
        final DraftLength length = policy.start();

        Run(KvCache kv, PagedKvCache tables, int seq, Drafter.Session drafts, TokenSink out, StatsRecorder stats,
            SplittableRandom random, int vocabulary, int draftMax) {
            this.kv = kv;
            this.tables = tables;
            this.seq = seq;
            this.drafts = drafts;
            this.out = out;
            this.stats = stats;
            this.random = random;
            this.vocabulary = vocabulary;
            this.batches = new BatchArrays(seq, draftMax + 1);
            this.sampler = new Sampler(settings, vocabulary);
            this.p = new Distribution(vocabulary);
            this.residual = new Distribution(vocabulary);
            this.draft = new Draft(draftMax, vocabulary);
            this.logits = new float[vocabulary];
        }

        void decode(int[] prompt) {
            // Prefill: the main pass may run ahead (forwardAsync) while the drafter runs the prompt too.
            tables.reserve(seq, prompt.length);
            CompletionStage<ForwardResult> prefill = main.forwardAsync(batches.of(prompt, 0, prompt.length, 0, false), kv);
            drafts.prefill(prompt, prompt.length);
            ForwardResult r = join(prefill);
            stats.prefillDone();
            if (!out.emit(choose(r, 0, out.length), false)) return;
            while (step()) { }
        }

        /** One draft-and-verify step (or a plain step); false when generation stops. */
        boolean step() {
            int n = out.length;
            // A draft of k leads to k+1 tokens at most: keep k below the tokens still allowed.
            int k = length.next(out.remaining() - 1);
            draft.clear();
            if (k > 0) {
                long t0 = System.nanoTime();
                drafts.propose(out.context, n, k, policy.draftPMin(), draft);
                long dt = System.nanoTime() - t0;
                stats.draftNanos += dt;
                stats.drafted += draft.size();
                length.drafted(draft.size(), dt);
                // Discarding is lossless only for greedy decoding: when sampling, whether a draft is short depends
                // on the tokens drawn, and skipping their verification for some draws skews the output
                // distribution (SpeculativeSamplingDistributionTest shows it), so short drafts are verified.
                if (draft.size() > 0 && draft.size() < policy.draftMin() && settings.isGreedy()) {
                    stats.ignored += draft.size();
                    draft.clear();
                }
            }
            return draft.size() == 0 ? plainStep(n) : verify(n, draft.size());
        }

        boolean plainStep(int n) {
            long t0 = System.nanoTime();
            tables.reserve(seq, n);
            ForwardResult r = join(main.forwardAsync(batches.of(out.context, n - 1, 1, n - 1, false), kv));
            length.plainStep(System.nanoTime() - t0);
            tables.truncate(seq, n);       // drop positions a discarded draft may have reserved
            drafts.rollback(n);
            return out.emit(choose(r, 0, n), false);
        }

        boolean verify(int n, int k) {
            long t0 = System.nanoTime();
            tables.reserve(seq, n + k);
            for (int i = 0; i < k; i++) out.context[n + i] = draft.token(i);
            ForwardResult r = join(main.forwardAsync(batches.of(out.context, n - 1, k + 1, n - 1, true), kv));
            long dt = System.nanoTime() - t0;
            stats.verifyNanos += dt;
            // Row i is p for the token after context[n-1+i]; its penalty window is context[0, n+i).
            int agreed = 0, next = -1;
            for (; agreed < k; agreed++) {
                r.copyLogits(agreed, logits);
                sampler.fill(logits, vocabulary, out.context, n + agreed, p);
                int d = draft.token(agreed);
                Distribution q = draft.q(agreed);
                if (random.nextDouble() * q.p(d) < p.p(d)) continue;       // accept with probability min(1, p/q)
                residual.setResidual(p, q);
                next = residual.sample(random);
                break;
            }
            if (next < 0) next = choose(r, k, n + k);                     // all accepted: bonus from p_k
            length.verified(k + 1, dt, k, agreed);
            tables.truncate(seq, n + agreed);
            drafts.rollback(n + agreed);
            // Emit the agreed tokens and the main model's own token, stopping early if the limits say so.
            int emitted = 0;
            boolean go = true;
            while (go && emitted < agreed) go = out.emit(draft.token(emitted++), true);
            stats.verified(k, agreed, emitted);
            return go && out.emit(next, false);
        }

        /** The main model's token from result row {@code row}, after {@code context[0, contextLength)}. */
        int choose(ForwardResult r, int row, int contextLength) {
            r.copyLogits(row, logits);
            sampler.fill(logits, vocabulary, out.context, contextLength, p);
            return p.sample(random);
        }
    }

    private static ForwardResult join(CompletionStage<ForwardResult> stage) {
        return stage.toCompletableFuture().join();
    }
}
