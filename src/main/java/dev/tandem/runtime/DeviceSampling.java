package dev.tandem.runtime;

import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * Sampling decisions made where a model's logits are (a GPU), so that only tokens and verdicts cross to the host:
 * a capability some backends' models have, found at load through {@link LoadedModel#deviceSampling()}. The sampler
 * chain here has no repetition penalty (it needs the context, which lives on the host). Draws are counter-based,
 * keyed by (seed, position), so a seed gives one output — not the one the host's random gives.
 */
public interface DeviceSampling {
    /**
     * Makes room for at least {@code rows} draft distributions on this model's device, rows {@code [0, rows)} that
     * {@link #sampleDraftAsync} fills and a verification reads in place ({@link SampledDraft#kept}). The caller
     * lays its drafts out in them. Call before drafting into the rows, while no verification reads them: making
     * more room replaces the rows, and what they held is gone. Asking for no more than already kept does nothing.
     */
    void keepDraftRows(int rows);

    /**
     * Speculative verification of one sequence: runs {@code batch}, rows {@code [last, d1 .. dk]} with logits for
     * every row, turns each row into the sampler chain's distribution p_i, accepts d_i with probability
     * min(1, p_i(d_i) / q_i(d_i)) and draws the next token from norm(max(0, p − q)) at the first rejection, or
     * from p_k after k acceptances. Only the verdict comes back. A batch of one {@link #verifySampledAsync(Batch,
     * KvCache, List)}.
     */
    default CompletionStage<SampledVerdict> verifySampledAsync(Batch batch, KvCache kv, SampledDraft draft) {
        return verifySampledAsync(batch, kv, List.of(new Verification(0, batch.size() - 1, draft))).thenApply(v -> v.verdicts().getFirst());
    }

    /**
     * Speculative verification of several sequences in one pass of {@code batch}: each {@link Verification}, in
     * increasing row order and apart, names result rows {@code [firstRow, firstRow + k]} (the logits of one
     * sequence's rows {@code [last, d1 .. dk]}, consecutive in the batch) and its draft, with its own seed and
     * sampler chain; each is decided as {@link #verifySampledAsync(Batch, KvCache, SampledDraft)} decides a lone
     * one, its draws keyed by its own (seed, position), so a sequence's verdict does not depend on the others in the
     * pass. The result rows no verification names (plain sequences' rows) come back as an ordinary pass's do, in
     * {@link SampledVerdicts#pass}. The drafts' distributions are either all uploaded ({@link SampledDraft#q}) or
     * all kept by one draft model ({@link SampledDraft#kept}), each draft its own rows.
     */
    CompletionStage<SampledVerdicts> verifySampledAsync(Batch batch, KvCache kv, List<Verification> verifications);

    /**
     * Drafting: runs {@code batch}, which asks logits for one row (the row before the token to draft), turns that
     * row into the sampler chain's distribution q, keeps q as row {@code draw.row()} of the rows
     * {@link #keepDraftRows} made, and draws the drafted token from q, keyed by (seed, position of the drafted
     * token), a stream of draws apart from the verification's. Only the token and q's top probability (for p-min)
     * come back; a main model on the same device verifies against the kept rows ({@link SampledDraft#kept}).
     */
    CompletionStage<DrawnToken> sampleDraftAsync(Batch batch, KvCache kv, DraftDraw draw);

    /**
     * What {@link #verifySampledAsync} needs besides the pass: the draft's distributions q_1 .. q_k, the sampler
     * chain and the seed of the draws. The distributions are either dense rows of the vocabulary in {@code q}
     * (uploaded with the pass), or, with {@code q} null, rows {@code [firstKeptRow, firstKeptRow + k)} that
     * {@code keptBy}, the draft model's sampling, kept on its device (nothing crosses to the host).
     */
    record SampledDraft(float[] q, DeviceSampling keptBy, int firstKeptRow, float temperature, int topK, float topP, float minP, long seed) {
        /** Distributions from the host: q_i is row i of {@code q}. */
        public SampledDraft(float[] q, float temperature, int topK, float topP, float minP, long seed) {
            this(q, null, 0, temperature, topK, topP, minP, seed);
        }

        /** Distributions that {@code draft} kept on its device, rows {@code [firstKeptRow, firstKeptRow + k)}. */
        public static SampledDraft kept(DeviceSampling draft, int firstKeptRow, float temperature, int topK, float topP, float minP, long seed) {
            return new SampledDraft(null, draft, firstKeptRow, temperature, topK, topP, minP, seed);
        }
    }

    /** One sequence's part of a batched sampled verification: result rows {@code [firstRow, firstRow + k]}, {@code k >= 1}. */
    record Verification(int firstRow, int k, SampledDraft draft) {}

    /**
     * A batched sampled verification's outcome: one verdict per {@link Verification}, in their order, and the pass's
     * results (ids, and logits on first read, until the model's next pass) for the rows the plain sequences read.
     */
    record SampledVerdicts(List<SampledVerdict> verdicts, ForwardResult pass) {}

    /** A draft draw of {@link #sampleDraftAsync}: the kept row to fill, the sampler chain and the seed. */
    record DraftDraw(int row, float temperature, int topK, float topP, float minP, long seed) {}

    /** What a draft draw brings back: the token, and the probability q gives its top token. */
    record DrawnToken(int token, float topProbability) {}

    /** A sampled verification's outcome: the first {@code accepted} draft tokens stand, then {@code next}. */
    record SampledVerdict(int accepted, int next) {}
}
