package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The acceptance rule on hand-made verification rows: verdicts worked out by hand from the rule (greedy: accept
 * while the draft is the row's argmax; sampling: accept with probability min(1, p/q), replace from
 * norm(max(0, p − q))), and the main model's own token written after the agreed prefix.
 */
class AcceptanceRuleTest {
    /** Verification rows given as plain logit arrays; argmax is the interface's default (ties to the lower id). */
    record Rows(float[][] logits) implements ForwardResult {
        @Override public int rows() { return logits.length; }

        @Override public int vocabularySize() { return logits[0].length; }

        @Override public float logit(int row, int token) { return logits[row][token]; }

        @Override public void copyLogits(int row, float[] dst) { System.arraycopy(logits[row], 0, dst, 0, logits[row].length); }
    }

    /** Argmax ids 2, 3, 1, 0 in rows 0..3 (row 3 has a tie between 0 and 2: the lower id wins). */
    static final Rows ROWS = new Rows(new float[][] {
            {0f, 1f, 3f, 2f},
            {1f, 0f, 2f, 5f},
            {0f, 4f, 1f, 3f},
            {2f, 1f, 2f, 0f}});

    /** Context [0, 1] (n = 2) followed by the draft, with a slot for the token after it. */
    static int[] contextWithDraft(int... draft) {
        int[] context = new int[2 + draft.length + 1];
        context[0] = 0;
        context[1] = 1;
        System.arraycopy(draft, 0, context, 2, draft.length);
        return context;
    }

    static Draft oneHot(int vocabulary, int... tokens) {
        Draft d = new Draft(tokens.length, vocabulary);
        for (int t : tokens) d.pushCertain(t);
        return d;
    }

    static int accept(SamplerSettings settings, Rows rows, int[] context, Draft draft) {
        return new AcceptanceRule(new TokenChoice(settings, rows.vocabularySize())).accept(rows, 0, context, 2, draft.size(), draft, 0);
    }

    @Test
    void greedyAcceptsWhileTheDraftIsTheArgmaxThenWritesTheArgmaxOfTheFirstDisagreement() {
        int[] context = contextWithDraft(2, 3, 0);
        assertEquals(2, accept(SamplerSettings.greedy(), ROWS, context, oneHot(4, 2, 3, 0)));
        assertEquals(1, context[2 + 2], "row 2's argmax replaces the rejected draft token");
    }

    @Test
    void greedyFullAgreementWritesTheBonusFromTheLastRow() {
        int[] context = contextWithDraft(2, 3, 1);
        assertEquals(3, accept(SamplerSettings.greedy(), ROWS, context, oneHot(4, 2, 3, 1)));
        assertEquals(0, context[2 + 3], "row 3 ties 0 and 2: the lower id");
    }

    @Test
    void greedyWithARepetitionPenaltyJudgesThePenalisedRow() {
        // Row 0 after context [2, 0]: token 2's logit 1.0 halves to 0.5 under penalty 2, so 3 (0.9) is the argmax.
        Rows rows = new Rows(new float[][] {{0f, 0f, 1f, 0.9f}, {0f, 0f, 0f, 1f}});
        int[] context = {2, 0, 3, -1};
        SamplerSettings penalised = SamplerSettings.greedy().withRepetitionPenalty(2f, -1);
        assertEquals(1, new AcceptanceRule(new TokenChoice(penalised, 4)).accept(rows, 0, context, 2, 1, oneHot(4, 3), 0));
        assertEquals(3, context[3], "row 1's argmax (3 also appears in its window, 1/2 still beats 0)");

        int[] plain = {2, 0, 3, -1};
        assertEquals(0, new AcceptanceRule(new TokenChoice(SamplerSettings.greedy(), 4)).accept(rows, 0, plain, 2, 1, oneHot(4, 3), 0));
        assertEquals(2, plain[2], "without the penalty 2 is the argmax and replaces the draft");
    }

    @Test
    void samplingAcceptsEveryTokenDrawnFromTheMainModelsOwnDistribution() {
        // q = p exactly: u * q(d) < p(d) holds for every u in [0, 1), so the whole draft stays, for any seed.
        SamplerSettings settings = SamplerSettings.sampling(1f, 0);
        for (long seed = 0; seed < 50; seed++) {
            SamplerSettings s = settings.withSeed(seed);
            int[] context = contextWithDraft(0, 0, 0);
            Draft draft = new Draft(3, 4);
            Sampler sampler = new Sampler(s, 4);
            SplittableRandom random = new SplittableRandom(seed ^ 0x5eed);
            for (int i = 0; i < 3; i++) {
                Distribution q = draft.next();
                sampler.fill(ROWS.logits()[i], 4, context, 2 + i, q);
                int d = q.sample(random);
                draft.push(d);
                context[2 + i] = d;
            }
            assertEquals(3, accept(s, ROWS, context, draft), "seed " + seed);
        }
    }

    @Test
    void samplingReplacesATokenTheMainModelRulesOutFromWhatItAllows() {
        // Top-k 2 keeps ids 2 and 3 in row 0; a certain draft of 0 has p = 0, so it is rejected and the
        // replacement comes from norm(max(0, p − q)) = p: 2 or 3, never 0.
        SamplerSettings s = SamplerSettings.sampling(1f, 0).withTopK(2);
        for (long seed = 0; seed < 50; seed++) {
            int[] context = contextWithDraft(0);
            assertEquals(0, accept(s.withSeed(seed), ROWS, context, oneHot(4, 0)), "seed " + seed);
            int replacement = context[2];
            assertNotEquals(0, replacement);
            assertTrue(replacement == 2 || replacement == 3, "replacement " + replacement + " is in row 0's top 2");
        }
    }
}
