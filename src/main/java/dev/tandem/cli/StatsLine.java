package dev.tandem.cli;

import dev.tandem.engine.GenerationStats;

/** The one-line summary printed to stderr after a generation. */
final class StatsLine {
    private StatsLine() {}

    static String of(GenerationStats s) {
        String line = String.format("[%d tokens, %.1f tok/s, prompt %d tokens in %.0f ms",
                s.completionTokens(), s.predictedPerSecond(), s.promptTokens(), s.promptMillis());
        if (s.draftTokens() > 0 || s.verificationPasses() > 0) {
            line += String.format(", drafted %d, accepted %d (%.1f %%), %.2f tokens per pass",
                    s.draftTokens(), s.acceptedDraftTokens(), 100 * s.acceptanceRate(), s.meanAcceptedLength());
        }
        return line + "]";
    }
}
