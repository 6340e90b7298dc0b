package dev.tandem.decode;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

class NgramDrafterTest {
    static int[] propose(NgramDrafter drafter, int[] context, int max) {
        Draft out = new Draft(max, 100);
        try (Drafter.Session s = drafter.open(null)) {
            s.propose(context, context.length, max, 0.75f, out);
        }
        int[] tokens = new int[out.size()];
        for (int i = 0; i < tokens.length; i++) {
            tokens[i] = out.token(i);
            assertEquals(1f, out.q(i).p(tokens[i]), "n-gram proposals are certain");
        }
        return tokens;
    }

    @Test
    void proposesWhatFollowedTheLongestEarlierMatch() {
        // The last 3 tokens (7 8 9) occurred at the start, followed by 4 5; the 1-gram 9 also occurs later
        // (followed by 1), but the longer match wins.
        int[] ctx = {7, 8, 9, 4, 5, 9, 1, 7, 8, 9};
        assertArrayEquals(new int[] {4, 5, 9}, propose(new NgramDrafter(1, 3), ctx, 3));
    }

    @Test
    void prefersTheMostRecentOccurrenceAndStopsAtTheEndOfTheContext() {
        int[] ctx = {3, 1, 3, 2, 3};
        assertArrayEquals(new int[] {2, 3}, propose(new NgramDrafter(1, 3), ctx, 5));
    }

    @Test
    void proposesNothingWithoutAMatch() {
        assertArrayEquals(new int[] {}, propose(new NgramDrafter(1, 3), new int[] {1, 2, 3, 4}, 4));
        assertArrayEquals(new int[] {}, propose(new NgramDrafter(2, 3), new int[] {5, 1, 2, 5}, 4));
    }
}
