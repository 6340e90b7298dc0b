package dev.tandem.runtime.cuda;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.PagedKvCache;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Greedy verification decided on the device: for rows [last, d1 .. dk], the accepted length is the longest
 * prefix of d1..dk equal to the main model's argmax of the row before, and the next token is the argmax of the
 * first row not accepted. Expected values come from plain greedy decoding g0, g1, ... of the same model.
 */
class GreedyAcceptanceTest {
    @RegisterExtension
    static final CudaHostFixture HOST = new CudaHostFixture("kjv-draft-f32.gguf");
    static int[] prompt;
    /** Plain greedy continuation of {@link #prompt}. */
    static int[] greedy;

    @BeforeAll
    static void decodePlainly() {
        prompt = HOST.references().getFirst().promptTokens();
        greedy = ModelRuns.greedy(model(), prompt, 6);
    }

    static CudaModel model() {
        return HOST.model();
    }

    /** Runs the prompt, then verifies [g0, draft...] at the next position. */
    static CudaModel.GreedyVerdict verify(int... draft) {
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = model().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, prompt.length);
            model().forward(Batch.of(seq, 0, prompt, false), kv);
            int[] rows = new int[draft.length + 1];
            rows[0] = greedy[0];
            System.arraycopy(draft, 0, rows, 1, draft.length);
            tables.reserve(seq, prompt.length + rows.length);
            return model().verifyGreedy(Batch.of(seq, prompt.length, rows, true), kv);
        }
    }

    @Test
    void aDraftThatAgreesEverywhereIsAcceptedWholeAndTheBonusTokenFollows() {
        CudaModel.GreedyVerdict v = verify(greedy[1], greedy[2], greedy[3], greedy[4]);
        assertEquals(4, v.accepted());
        assertEquals(greedy[5], v.next());
        assertArrayEquals(Arrays.copyOfRange(greedy, 1, 6), v.pass().argmaxIds());
    }

    @Test
    void theFirstDisagreementEndsAcceptanceAndTheMainModelsTokenReplacesIt() {
        int wrong = (greedy[3] + 1) % model().config().vocabularySize();
        CudaModel.GreedyVerdict v = verify(greedy[1], greedy[2], wrong, greedy[4]);
        assertEquals(2, v.accepted());
        assertEquals(greedy[3], v.next());
        int[] ids = v.pass().argmaxIds();
        for (int r = 0; r < ids.length; r++) assertEquals(v.pass().argmax(r), ids[r], "row " + r);
    }

    @Test
    void aWrongFirstDraftTokenAcceptsNothing() {
        int wrong = (greedy[1] + 1) % model().config().vocabularySize();
        CudaModel.GreedyVerdict v = verify(wrong, greedy[2]);
        assertEquals(0, v.accepted());
        assertEquals(greedy[1], v.next());
    }

    @Test
    void withNoDraftTheVerdictIsThePlainNextToken() {
        CudaModel.GreedyVerdict v = verify();
        assertEquals(0, v.accepted());
        assertEquals(greedy[1], v.next());
    }

    @Test
    void verificationNeedsLogitsForEveryRow() {
        PagedKvCache tables = new PagedKvCache(16, 1);
        try (KvCache kv = model().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, 3);
            var e = assertThrows(IllegalArgumentException.class, () -> model().verifyGreedy(Batch.of(seq, 0, new int[] {1, 2, 3}, false), kv));
            assertEquals(true, e.getMessage().contains("every row"), e.getMessage());
        }
    }
}
