package dev.tandem.cli;

import dev.tandem.engine.SamplingSettings;
import picocli.CommandLine.Option;

/** Sampling flags shared by generate, chat and bench (defaults as the reference engine's). */
final class SamplingOptions {
    @Option(names = "--temperature", defaultValue = "0.8", description = "0 = greedy (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", description = "Keep the K most likely tokens; 0 = all (default: ${DEFAULT-VALUE}).")
    int topK;

    @Option(names = "--top-p", defaultValue = "0.95", description = "Nucleus sampling threshold; 1 = off (default: ${DEFAULT-VALUE}).")
    float topP;

    @Option(names = "--min-p", defaultValue = "0.05", description = "Drop tokens below min-p times the top probability; 0 = off (default: ${DEFAULT-VALUE}).")
    float minP;

    @Option(names = "--repeat-penalty", defaultValue = "1.0", description = "Repetition penalty; 1 = off (default: ${DEFAULT-VALUE}).")
    float repeatPenalty;

    @Option(names = "--repeat-last-n", defaultValue = "64", description = "Tokens the repetition penalty looks back (default: ${DEFAULT-VALUE}).")
    int repeatLastN;

    @Option(names = "--seed", description = "Seed of the sampler (default: random).")
    Long seed;

    /** The flags checked one by one, each error naming its flag (the engine's own checks name API fields). */
    SamplingSettings settings() {
        // NaN fails every comparison; infinities are refused as NaN is (a float flag parses "Infinity" too).
        if (!(temperature >= 0) || Float.isInfinite(temperature)) {
            throw new UsageException("--temperature must be a finite number at least 0, got " + temperature);
        }
        if (topK < 0) throw new UsageException("--top-k must be at least 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new UsageException("--top-p must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new UsageException("--min-p must be in [0, 1], got " + minP);
        if (!(repeatPenalty > 0) || Float.isInfinite(repeatPenalty)) {
            throw new UsageException("--repeat-penalty must be a finite positive number, got " + repeatPenalty);
        }
        if (repeatLastN < 0) throw new UsageException("--repeat-last-n must be at least 0, got " + repeatLastN);
        long s = seed != null ? seed : new java.util.Random().nextLong();
        return new SamplingSettings(temperature, topK, topP, minP, repeatPenalty, repeatLastN, s);
    }
}
