package dev.tandem.engine;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** The identities every {@link GenerationStats} satisfies. */
final class StatsChecks {
    private StatsChecks() {}

    static void assertConsistent(GenerationStats s) {
        assertEquals(s.draftTokens(), s.acceptedDraftTokens() + s.rejectedDraftTokens() + s.ignoredDraftTokens(), "drafted = accepted + rejected + ignored");
        int[] h = s.acceptedLengthHistogram();
        assertEquals(s.verificationPasses(), Arrays.stream(h).asLongStream().sum(), "histogram sums to the verification passes");
        long weighted = 0;
        for (int i = 0; i < h.length; i++) weighted += (long) i * h[i];
        assertEquals(s.acceptedDraftTokens(), weighted, "histogram weights sum to the accepted tokens");
    }
}
