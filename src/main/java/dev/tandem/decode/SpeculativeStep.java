package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.PagedKvCache;

/**
 * One sequence's speculative decoding, cut open at the main-model pass so that a scheduler can put the
 * verification rows of several sequences, and the single rows of plain ones, into one batched forward.
 *
 * <p>With n = context length, the main model's K/V holding positions [0, n-1) and last = context[n-1], each step is:
 * <ol>
 *   <li>{@code k = propose(context, n, remaining)}: the drafter proposes d1..dk and writes them into
 *       {@code context[n, n+k)}; k = 0 means a plain step.</li>
 *   <li>The caller reserves n + k positions and runs rows {@code context[n-1 .. n-1+k]} at positions
 *       {@code n-1 .. n-1+k}, asking logits for all k+1 rows.</li>
 *   <li>{@link #verify} (k > 0) applies the acceptance rule to those rows, or {@link #plain} (k = 0) chooses
 *       from the one row; either truncates the shared tables (main and draft K/V at once) to what was kept.</li>
 *   <li>The caller emits the agreed draft tokens then {@link #nextToken()}, stopping where its limits say, and
 *       reports how many draft tokens it emitted with {@link #emitted}.</li>
 * </ol>
 * The acceptance rule is {@link SpeculativeGenerator}'s: greedy settings accept while the draft equals the main
 * argmax; sampling accepts d_i with probability min(1, p/q) and replaces the first rejected one from
 * norm(max(0, p − q)).
 */
public final class SpeculativeStep implements AutoCloseable {
    private final Drafter.Session drafts;
    private final DraftPolicy policy;
    private final DraftLength length;
    private final TokenChoice choice;
    private final PagedKvCache tables;
    private final int sequence;
    /** Draft positions must stay below the drafter's context. */
    private final int positionLimit;
    private final Draft draft;
    private final Distribution residual;
    private int agreed, next;

    private long drafted, accepted, rejected, ignored, passes, draftNanos;
    private final int[] histogram;

    /**
     * Opens {@code drafter} for {@code sequence} of {@code tables}, the block tables the main model's K/V uses
     * too; the sequence's prompt must be reserved there before {@link #prefill}.
     */
    public SpeculativeStep(Drafter drafter, DraftPolicy policy, TokenChoice choice, PagedKvCache tables, int sequence) {
        this.policy = policy;
        this.length = policy.start();
        this.choice = choice;
        this.tables = tables;
        this.sequence = sequence;
        this.positionLimit = drafter.contextLength();
        int vocabulary = choice.vocabularySize();
        this.draft = new Draft(policy.draftMax(), vocabulary);
        this.residual = new Distribution(vocabulary);
        this.histogram = new int[policy.draftMax() + 1];
        this.drafts = drafter.open(new Drafter.Context(tables, sequence, vocabulary, choice.settings(), choice.random(), policy.draftMax()));
    }

    /** The prompt {@code tokens[0, length)}: a model drafter runs it now. */
    public void prefill(int[] tokens, int length) {
        drafts.prefill(tokens, length);
    }

    /**
     * Drafts the continuation of {@code context[0, n)} with at most {@code remaining} tokens still allowed (a
     * draft of k leads to k+1 tokens at most), writes it into {@code context[n, n+k)} (the array must hold
     * n + draftMax tokens) and returns k; 0 means a plain step.
     */
    public int propose(int[] context, int n, int remaining) {
        draft.clear();
        int k = length.next(Math.max(0, Math.min(remaining - 1, positionLimit - n)));
        if (k > 0) {
            long t0 = System.nanoTime();
            drafts.propose(context, n, k, policy.draftPMin(), draft);
            long dt = System.nanoTime() - t0;
            draftNanos += dt;
            drafted += draft.size();
            length.drafted(draft.size(), dt);
            // Discarding short drafts is lossless only when greedy (see SpeculativeGenerator).
            if (draft.size() > 0 && draft.size() < policy.draftMin() && choice.settings().isGreedy()) {
                ignored += draft.size();
                draft.clear();
            }
        }
        for (int i = 0; i < draft.size(); i++) context[n + i] = draft.token(i);
        return draft.size();
    }

    /** Draft token {@code i} of the current proposal. */
    public int draftToken(int i) { return draft.token(i); }

    /**
     * Checks the current draft of k tokens against result rows {@code firstRow .. firstRow+k} (row i: the main
     * model after {@code context[n-1+i]}); keeps the K/V of the agreed prefix and returns its length. The pass
     * took {@code passNanos} (the adaptive policy learns from it).
     */
    public int verify(ForwardResult result, int firstRow, int[] context, int n, long passNanos) {
        int k = draft.size();
        int a = 0, token = -1;
        for (; a < k; a++) {
            // Row a is p for the token after context[n-1+a]; its penalty window is context[0, n+a).
            Distribution p = choice.distribution(result, firstRow + a, context, n + a);
            int d = draft.token(a);
            Distribution q = draft.q(a);
            if (choice.random().nextDouble() * q.p(d) < p.p(d)) continue;     // accept with probability min(1, p/q)
            residual.setResidual(p, q);
            token = residual.sample(choice.random());
            break;
        }
        if (token < 0) token = choice.choose(result, firstRow + k, context, n + k);  // all accepted: bonus from p_k
        length.verified(k + 1, passNanos, k, a);
        tables.truncate(sequence, n + a);
        drafts.rollback(n + a);
        agreed = a;
        next = token;
        return a;
    }

    /** The main model's own token after the agreed draft tokens of the last {@link #verify}. */
    public int nextToken() { return next; }

    /**
     * The caller emitted the first {@code count} of the agreed draft tokens of the last {@link #verify} (fewer
     * when a stop came first: the rest count as ignored).
     */
    public void emitted(int count) {
        int k = draft.size();
        passes++;
        histogram[count]++;
        accepted += count;
        ignored += agreed - count;
        rejected += k - agreed;
    }

    /** A plain step: the token after {@code context[0, n)} from result row {@code row}; the pass took {@code passNanos}. */
    public int plain(ForwardResult result, int row, int[] context, int n, long passNanos) {
        length.plainStep(passNanos);
        tables.truncate(sequence, n);       // drop positions a discarded draft reserved
        drafts.rollback(n);
        return choice.choose(result, row, context, n);
    }

    public long draftedTokens() { return drafted; }

    public long acceptedTokens() { return accepted; }

    public long rejectedTokens() { return rejected; }

    public long ignoredTokens() { return ignored; }

    public long verificationPasses() { return passes; }

    public double draftMillis() { return draftNanos / 1e6; }

    /** Verification passes by number of accepted draft tokens. */
    public int[] acceptedLengthHistogram() { return histogram.clone(); }

    @Override
    public void close() {
        drafts.close();
    }
}
