package dev.tandem.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The exactness check of {@link ParallelBench}: a greedy speculative output must equal the plain one of its prompt. */
class ParallelBenchTest {
    @Test
    void equalOutputsPass() {
        assertDoesNotThrow(() -> ParallelBench.requireSameOutputs(2, 1, List.of(new int[] {1, 2, 3}, new int[] {4, 5, 6}),
                List.of(new int[] {1, 2, 3}, new int[] {4, 5, 6})));
    }

    @Test
    void aDifferentTokenNamesTheConcurrencyRoundPromptAndPosition() {
        var e = assertThrows(SpeculativeMismatchException.class, () -> ParallelBench.requireSameOutputs(4, 3,
                List.of(new int[] {1, 2, 3}, new int[] {4, 5, 6}), List.of(new int[] {1, 2, 3}, new int[] {4, 9, 6})));
        assertEquals("greedy speculative output differs from plain decoding (it must be identical): 4 concurrent requests, round 3, "
                + "prompt 2, token 2 is 9 speculative, 5 plain", e.getMessage());
    }

    @Test
    void aShorterOutputIsADifferenceToo() {
        var e = assertThrows(SpeculativeMismatchException.class, () -> ParallelBench.requireSameOutputs(1, 1,
                List.of(new int[] {1, 2, 3}), List.of(new int[] {1, 2})));
        assertEquals("greedy speculative output differs from plain decoding (it must be identical): 1 concurrent requests, round 1, "
                + "prompt 1, token 3 is missing speculative, 3 plain", e.getMessage());
    }
}
