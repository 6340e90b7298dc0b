package dev.tandem.cli;

import dev.tandem.engine.DraftSettings;
import picocli.CommandLine.Option;

/** Speculative decoding flags: a draft model (or the n-gram prompt lookup) and its draft-length policy. */
final class DraftOptions {
    @Option(names = {"-d", "--draft"}, paramLabel = "MODEL|ngram",
            description = "Draft model (GGUF or HF folder sharing the main model's vocabulary), or 'ngram' for prompt lookup.")
    String draft;

    @Option(names = "--draft-max", defaultValue = "16", description = "Most tokens drafted per pass (default: ${DEFAULT-VALUE}).")
    int draftMax;

    @Option(names = "--draft-min", defaultValue = "0", description = "A shorter draft is discarded and a normal step taken (default: ${DEFAULT-VALUE}).")
    int draftMin;

    @Option(names = "--draft-p-min", defaultValue = "0.75", description = "Stop drafting when the draft's top probability falls below this (default: ${DEFAULT-VALUE}).")
    float draftPMin;

    @Option(names = "--draft-adaptive", description = "Choose the draft length from measured costs and acceptance; off when it would be slower.")
    boolean adaptive;

    @Option(names = "--color", description = "Show tokens accepted from the draft in green.")
    boolean color;

    boolean enabled() { return draft != null; }

    boolean ngram() { return "ngram".equalsIgnoreCase(draft); }

    /** What a request drafts with: the loaded draft model, prompt lookup, or nothing; the limits and policy as given. */
    DraftSettings settings() {
        if (!enabled()) return DraftSettings.off();
        DraftSettings mode = ngram() ? DraftSettings.ngram() : DraftSettings.model(null);
        return mode.withLimits(draftMax, draftMin, draftPMin).withAdaptive(adaptive);
    }

    void validate() {
        if (draftMax < 1 || draftMax > DraftSettings.MAX_DRAFT) throw new UsageException("--draft-max must be in [1, " + DraftSettings.MAX_DRAFT + "], got " + draftMax);
        if (draftMin < 0 || draftMin > draftMax) throw new UsageException("--draft-min must be in [0, --draft-max], got " + draftMin);
        if (!(draftPMin >= 0 && draftPMin <= 1)) throw new UsageException("--draft-p-min must be in [0, 1], got " + draftPMin);
    }
}
