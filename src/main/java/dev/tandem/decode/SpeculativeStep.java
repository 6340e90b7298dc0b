package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.DeviceSampling.SampledDraft;
import dev.tandem.runtime.DeviceSampling.SampledVerdict;
import dev.tandem.runtime.PagedKvCache;

/**
 * One sequence's speculative decoding, cut open at the main-model pass so that the caller — the engine's scheduler —
 * runs that pass with the verification rows of several sequences, and the single rows of plain ones, in one batched
 * forward.
 *
 * <p>With n = context length, the main model's K/V holding positions [0, n-1) and last = context[n-1], each step is:
 * <ol>
 *   <li>{@link #planDraft} chooses k, the caller runs the proposal through {@link Drafter#proposeAll} (with other
 *       sequences' proposals of the same drafter) and {@link #drafted} returns k: d1..dk are in
 *       {@code context[n, n+k)}; k = 0 means a plain step.</li>
 *   <li>The caller reserves n + k positions and runs rows {@code context[n-1 .. n-1+k]} at positions
 *       {@code n-1 .. n-1+k}, asking logits for all k+1 rows.</li>
 *   <li>{@link #verify} (k > 0) applies the {@link AcceptanceRule} to those rows, or {@link #plain} (k = 0)
 *       chooses from the one row; either truncates the shared tables (main and draft K/V at once) to what was
 *       kept. Rollback of rejected tokens is that one truncate — no copy.</li>
 *   <li>The caller emits the agreed draft tokens then {@link #nextToken()}, stopping where its limits say, and
 *       reports how many draft tokens it emitted with {@link #emitted}.</li>
 * </ol>
 */
public final class SpeculativeStep implements AutoCloseable {
    private final Drafter drafter;
    private final Drafter.Session drafts;
    private final DraftPolicy policy;
    private final DraftLength length;
    /** The drafter's pass costs (null: it runs no model passes), weighed when planning a draft. */
    private final PassCostModel draftCosts;
    private final TokenChoice choice;
    private final AcceptanceRule rule;
    private final PagedKvCache tables;
    private final int sequence;
    /** Draft positions must stay below the drafter's context. */
    private final int positionLimit;
    /** The draft being verified ({@link #draft}) and the one the draft-ahead fills ({@link #guess}) swap when a guess comes true. */
    private Draft draft, guess;
    /** The draft-ahead's guess of the main model's next token (never verified, so its q is never read). */
    private final Draft bonusGuess;
    private final DraftCounts counts;
    private int agreed, next;
    /** The draft length {@link #planDraft} asked for (0: a plain step, or a guess already drafted). */
    private int planned;
    /** The last verification's draft length, and the draft-ahead's length limit for the next draft. */
    private int verifiedLength, aheadMax;
    /** The last verification accepted the whole draft and its next token was the bonus guess: {@link #guess} is the next draft. */
    private boolean guessCameTrue;
    /** {@link #sampledDraft}'s rows, allocated on first use. */
    private float[] denseRows;

    /**
     * Opens {@code drafter} for {@code sequence} of {@code tables}, the block tables the main model's K/V uses
     * too; the sequence's prompt must be reserved there before {@link #prefill}.
     */
    public SpeculativeStep(Drafter drafter, DraftPolicy policy, TokenChoice choice, PagedKvCache tables, int sequence) {
        this.drafter = drafter;
        this.policy = policy;
        this.length = policy.start(drafter.acceptance());
        this.draftCosts = drafter.passCosts();
        this.choice = choice;
        this.rule = new AcceptanceRule(choice);
        this.tables = tables;
        this.sequence = sequence;
        this.positionLimit = drafter.contextLength();
        this.draft = new Draft(policy.draftMax(), choice.vocabularySize());
        this.guess = new Draft(policy.draftMax(), choice.vocabularySize());
        this.bonusGuess = new Draft(1, choice.vocabularySize());
        this.counts = new DraftCounts(policy.draftMax());
        this.drafts = drafter.open(new Drafter.Context(tables, sequence, choice.vocabularySize(), choice.settings(), choice.random(), policy.draftMax()));
    }

    /** The prompt {@code tokens[0, length)}: a model drafter runs it now. */
    public void prefill(int[] tokens, int length) {
        drafts.prefill(tokens, length);
    }

    /** The prompt {@code tokens[0, length)} of which the first {@code cached} positions' K/V a prefix cache shared. */
    public void prefill(int[] tokens, int cached, int length) {
        drafts.prefill(tokens, cached, length);
    }

    /** Positions {@code [0, n)} of the drafter's own K/V storage hold the context's tokens (0: it has none). */
    public int draftStoredLength() { return drafts.storedLength(); }

    /**
     * Plans the draft of the continuation of {@code context[0, n)} with at most {@code remaining} tokens still allowed
     * (a draft of k leads to k+1 tokens at most; the array must hold n + draftMax + 1 tokens): the proposal to run
     * (through {@link #drafter()}'s {@link Drafter#proposeAll}, with the other sequences' of that drafter), or null for
     * a plain step; then {@link #drafted} with the same arguments. The draft's length is chosen against {@code plan}, the step so
     * far with this sequence's own row added, and committed to it.
     */
    public Drafter.Proposal planDraft(int[] context, int n, int remaining, StepPlan plan) {
        if (guessCameTrue) {                // drafted ahead during the last verification: nothing to run
            guessCameTrue = false;
            Draft verified = draft;
            draft = guess;
            guess = verified;
            planned = 0;
            plan.commitDraft(null, draft.size(), length.expectedExtraTokens(draft.size()));   // its draft passes are done
            return null;
        }
        draft.clear();
        planned = length.next(Math.max(0, Math.min(remaining - 1, positionLimit - n)), plan, draftCosts);
        if (weighsTheBatch()) plan.commitChoice(draftCosts, planned, length.expectedExtraTokens(planned));
        else plan.commitDraft(draftCosts, planned, length.expectedExtraTokens(planned));
        return planned > 0 ? new Drafter.Proposal(drafts, context, n, planned, policy.draftPMin(), draft) : null;
    }

    /** The planned proposal ran, drafting for {@code draftNanos} (with the others it ran beside); returns k. */
    public int drafted(int[] context, int n, long draftNanos) {
        if (planned > 0) counts.draftNanos += draftNanos;
        counts.drafted += draft.size();
        // Discarding is lossless only for greedy decoding: when sampling, whether a draft is short depends
        // on the tokens drawn, and skipping their verification for some draws skews the output
        // distribution (SpeculativeSamplingDistributionTest shows it), so short drafts are verified.
        if (draft.size() > 0 && draft.size() < policy.draftMin() && choice.settings().isGreedy()) {
            counts.ignored += draft.size();
            draft.clear();
        }
        for (int i = 0; i < draft.size(); i++) context[n + i] = draft.token(i);
        return draft.size();
    }

    /**
     * Whether this step may draft ahead: while the main model verifies the current draft, the drafter assumes every
     * draft token accepted, guesses the main model's next token and drafts the next draft after it. Only with a
     * fixed draft length: the adaptive policy learns from each draft's cost, which overlapped drafts do not show.
     */
    public boolean draftsAhead() { return policy instanceof DraftPolicy.Fixed; }

    /**
     * Whether this step's draft length weighs the batch it joins (the adaptive policy), so that a caller planning
     * several sequences commits the fixed drafts and plain rows to the {@link StepPlan} first, and announces this one
     * ({@link #willDecide}).
     */
    public boolean weighsTheBatch() { return policy instanceof DraftPolicy.Adaptive; }

    /**
     * Draft-ahead, first part, once the verification of the current draft (k tokens, in {@code context[n, n+k)}) is
     * enqueued: the proposal of the bonus guess (one token at {@code n + k}), or null when no tokens would be left
     * for a next draft. {@code remaining}: the tokens still allowed before this step.
     */
    public Drafter.Proposal planBonusGuess(int[] context, int n, int remaining) {
        guess.clear();
        bonusGuess.clear();
        int k = draft.size();
        aheadMax = Math.min(policy.draftMax(), Math.min(remaining - (k + 1) - 1, positionLimit - (n + k + 1)));
        return k > 0 && aheadMax >= 1 ? new Drafter.Proposal(drafts, context, n + k, 1, 0f, bonusGuess) : null;
    }

    /**
     * Draft-ahead, second part, after the bonus guess ran: the proposal of the next draft after it (p-min applies:
     * it is a draft like any other), or null. The bonus guess itself stands for the main model's token and is not
     * proposed.
     */
    public Drafter.Proposal planAhead(int[] context, int n) {
        if (bonusGuess.size() == 0) return null;
        return new Drafter.Proposal(drafts, context, n + draft.size() + 1, aheadMax, policy.draftPMin(), guess);
    }

    /** Tells {@code plan} that this step will choose its draft's length there ({@link StepPlan#willDecide}). */
    public void willDecide(StepPlan plan) { plan.willDecide(draftCosts); }

    /** The drafter whose sessions this step's proposals belong to. */
    public Drafter drafter() { return drafter; }

    /** Draft token {@code i} of the current proposal. */
    public int draftToken(int i) { return draft.token(i); }

    /**
     * Checks the current draft of k tokens against result rows {@code firstRow .. firstRow+k} (row i: the main
     * model after {@code context[n-1+i]}); keeps the K/V of the agreed prefix and returns its length, and leaves
     * {@link #nextToken()} in {@code context[n + agreed]}. The pass took {@code passNanos} (counted in the stats; its
     * caller records it in the main model's {@link PassCostModel}).
     */
    public int verify(ForwardResult result, int firstRow, int[] context, int n, long passNanos) {
        return keep(rule.accept(result, firstRow, context, n, draft.size(), draft, 0), context, n, passNanos);
    }

    /**
     * The current draft for a sampled verification that finishes on the main model's device
     * ({@link DeviceSampling#verifySampledAsync}): its k distributions as dense rows, the sampler chain and the seed;
     * null when this step's sampling needs the host (greedy, or a repetition penalty, which needs the context).
     */
    public SampledDraft sampledDraft() {
        SamplerSettings s = choice.settings();
        if (!s.samplesWithoutContext()) return null;
        int vocabulary = choice.vocabularySize();
        if (denseRows == null) denseRows = new float[policy.draftMax() * vocabulary];
        draft.denseRows(draft.size(), denseRows, vocabulary);
        return new SampledDraft(denseRows, s.temperature(), s.topK(), s.topP(), s.minP(), s.seed());
    }

    /** {@link #verify} with the verdict the main model's device reached on {@link #sampledDraft()}. */
    public int verified(SampledVerdict verdict, int[] context, int n, long passNanos) {
        context[n + verdict.accepted()] = verdict.next();
        return keep(verdict.accepted(), context, n, passNanos);
    }

    /** Keeps the K/V of the {@code agreed} draft tokens; the main model's own token is in {@code context[n + agreed]}. */
    private int keep(int agreed, int[] context, int n, long passNanos) {
        int k = draft.size();
        counts.verifyNanos += passNanos;
        this.agreed = agreed;
        verifiedLength = k;
        next = context[n + agreed];
        length.verified(k, agreed);
        drafter.acceptance().verified(k, agreed);
        guessCameTrue = agreed == k && bonusGuess.size() > 0 && bonusGuess.token(0) == next;
        bonusGuess.clear();
        if (!guessCameTrue) {
            // Rejected tokens, and a draft-ahead on a wrong guess: one truncate rolls both models back.
            tables.truncate(sequence, n + agreed);
            drafts.rollback(n + agreed);
        }
        // Else the draft's K/V already holds the guess and its draft but the last, and the main model's all it verified.
        return agreed;
    }

    /** The main model's own token after the agreed draft tokens of the last {@link #verify}. */
    public int nextToken() { return next; }

    /**
     * The caller emitted the first {@code count} of the agreed draft tokens of the last {@link #verify} (fewer
     * when a stop came first: the rest count as ignored).
     */
    public void emitted(int count) {
        counts.verified(verifiedLength, agreed, count);
    }

    /** A plain step: the token after {@code context[0, n)} from result row {@code row}. */
    public int plain(ForwardResult result, int row, int[] context, int n) {
        guessCameTrue = false;
        tables.truncate(sequence, n);       // drop positions a discarded draft reserved
        drafts.rollback(n);
        return choice.choose(result, row, context, n);
    }

    public long draftedTokens() { return counts.drafted; }

    public long acceptedTokens() { return counts.accepted; }

    public long rejectedTokens() { return counts.rejected; }

    public long ignoredTokens() { return counts.ignored; }

    public long verificationPasses() { return counts.passes; }

    public double draftMillis() { return counts.draftNanos / 1e6; }

    /** Time in the verification passes, as their callers timed them. */
    public double verifyMillis() { return counts.verifyNanos / 1e6; }

    /** Verification passes by number of accepted draft tokens. */
    public int[] acceptedLengthHistogram() { return counts.histogram.clone(); }

    @Override
    public void close() {
        drafts.close();
    }
}
