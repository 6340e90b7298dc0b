package dev.tandem.runtime;

import dev.tandem.model.ModelConfig;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/** A model ready to run on a backend. */
public interface LoadedModel extends AutoCloseable {
    ModelConfig config();

    /** K/V storage for this model over {@code tables}: one block of storage per block of the shared pool. */
    KvCache createKvCache(PagedKvCache tables);

    /** Bytes of K/V storage one position costs this model (for sizing a pool from a memory budget). */
    long kvBytesPerPosition();

    /**
     * Runs the batch's rows in one pass: appends their K/V at their positions (which the tables must already
     * cover, see {@link PagedKvCache#reserve}) and returns logits for {@code batch.logitRows()}. Each weight is
     * read once per pass whatever the number of rows, and a row's logits do not depend on the other rows.
     */
    ForwardResult forward(Batch batch, KvCache kv);

    /** {@link #forward} that may run ahead of the caller (CUDA streams). The CPU runs it at once. */
    default CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
        try {
            return CompletableFuture.completedFuture(forward(batch, kv));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Speculative verification of one sequence with the sampling decision made where the logits are (a GPU):
     * runs {@code batch}, rows {@code [last, d1 .. dk]} with logits for every row, turns each row into the
     * sampler chain's distribution p_i, accepts d_i with probability min(1, p_i(d_i) / q_i(d_i)) and draws the
     * next token from norm(max(0, p − q)) at the first rejection, or from p_k after k acceptances. Draws are
     * counter-based, keyed by (seed, position), so a seed gives one output. Only the verdict comes back.
     * Returns {@code null}, having run nothing, when this model cannot: the caller then verifies on the host from
     * {@link #forwardAsync}'s logits.
     */
    default CompletionStage<SampledVerdict> verifySampledAsync(Batch batch, KvCache kv, SampledDraft draft) { return null; }

    /**
     * Whether this model samples where its logits are: {@link #verifySampledAsync} and {@link #sampleDraftAsync}
     * run rather than answer null. A generator decides from it, before drafting, where the draft's distributions
     * should live.
     */
    default boolean samplesOnDevice() { return false; }

    /**
     * What {@link #verifySampledAsync} needs besides the pass: the draft's distributions q_1 .. q_k, the sampler
     * chain (without the repetition penalty, which needs the context on the host) and the seed of the draws. The
     * distributions are either dense rows of the vocabulary in {@code q} (uploaded with the pass), or, with
     * {@code q} null, rows {@code [firstKeptRow, firstKeptRow + k)} that {@link #sampleDraftAsync} kept on
     * {@code keptBy}'s device (nothing crosses to the host).
     */
    record SampledDraft(float[] q, LoadedModel keptBy, int firstKeptRow, float temperature, int topK, float topP, float minP, long seed) {
        /** Distributions from the host: q_i is row i of {@code q}. */
        public SampledDraft(float[] q, float temperature, int topK, float topP, float minP, long seed) {
            this(q, null, 0, temperature, topK, topP, minP, seed);
        }

        /** Distributions that {@code draft} kept on its device, rows {@code [firstKeptRow, firstKeptRow + k)}. */
        public static SampledDraft kept(LoadedModel draft, int firstKeptRow, float temperature, int topK, float topP, float minP, long seed) {
            return new SampledDraft(null, draft, firstKeptRow, temperature, topK, topP, minP, seed);
        }
    }

    /** Rows a model keeps for {@link #sampleDraftAsync}: two drafts of up to 16 tokens, plus the ahead guess. */
    int KEPT_DRAFT_ROWS = 34;

    /**
     * Drafting with sampling where the logits are (a GPU): runs {@code batch}, which asks logits for one row (the
     * row before the token to draft), turns that row into the sampler chain's distribution q, keeps q on the
     * device as row {@code draw.row()} of {@link #KEPT_DRAFT_ROWS}, and draws the drafted token from q with
     * counter-based randoms keyed by (seed, position of the drafted token), a stream of draws apart from the
     * verification's. Only the token and q's top probability (for p-min) come back; a main model on the same
     * device verifies against the kept rows ({@link SampledDraft#kept}). Returns {@code null}, having run nothing,
     * when this model cannot.
     */
    default CompletionStage<DrawnToken> sampleDraftAsync(Batch batch, KvCache kv, DraftDraw draw) { return null; }

    /** A draft draw of {@link #sampleDraftAsync}: the kept row to fill, the sampler chain and the seed. */
    record DraftDraw(int row, float temperature, int topK, float topP, float minP, long seed) {}

    /** What a draft draw brings back: the token, and the probability q gives its top token. */
    record DrawnToken(int token, float topProbability) {}

    /** A sampled verification's outcome: the first {@code accepted} draft tokens stand, then {@code next}. */
    record SampledVerdict(int accepted, int next) {}

    @Override
    void close();
}
