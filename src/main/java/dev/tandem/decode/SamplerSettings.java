package dev.tandem.decode;

/**
 * How the next token is chosen from a model's logits. The chain runs in llama.cpp's order: repetition penalty,
 * top-k, top-p, min-p, temperature, then a seeded draw. Temperature 0 means greedy: the highest logit (after the
 * penalty) wins, ties to the lower id.
 *
 * @param temperature       0 for greedy; otherwise logits are divided by it before the draw
 * @param topK              keep the k highest logits (ties: lower id first); 0 or less keeps all
 * @param topP              keep the smallest prefix of the sorted tokens whose probability reaches topP; 1 keeps all
 * @param minP              drop tokens below {@code minP} times the top probability; 0 keeps all
 * @param repetitionPenalty divides positive (multiplies negative) logits of tokens seen in the last
 *                          {@code repeatLastN} context tokens; 1 is off
 * @param repeatLastN       window of the penalty in tokens (prompt included); 0 is off, -1 the whole context
 * @param seed              seed of the random draws; one generation with one seed is reproducible
 */
public record SamplerSettings(float temperature, int topK, float topP, float minP, float repetitionPenalty,
                              int repeatLastN, long seed) {
    public SamplerSettings {
        if (!(temperature >= 0) || Float.isInfinite(temperature)) throw new IllegalArgumentException("temperature must be finite and 0 or more, got " + temperature);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("min-p must be in [0, 1], got " + minP);
        if (!(repetitionPenalty > 0) || Float.isInfinite(repetitionPenalty)) throw new IllegalArgumentException("repetition penalty must be finite and positive, got " + repetitionPenalty);
        if (repeatLastN < -1) throw new IllegalArgumentException("repeat-last-n must be -1, 0 or positive, got " + repeatLastN);
    }

    /** Temperature 0, every filter off. */
    public static SamplerSettings greedy() {
        return new SamplerSettings(0f, 0, 1f, 0f, 1f, 64, 0L);
    }

    /** Plain sampling at {@code temperature} with every filter off. */
    public static SamplerSettings sampling(float temperature, long seed) {
        return new SamplerSettings(temperature, 0, 1f, 0f, 1f, 64, seed);
    }

    public boolean isGreedy() { return temperature == 0f; }

    /** Whether the repetition penalty changes any logit (a factor other than 1 over a window of at least one token). */
    public boolean penalisesRepetition() { return repetitionPenalty != 1f && repeatLastN != 0; }

    /**
     * Sampling a device can do where the logits are (its chain has no repetition penalty, which needs the
     * context on the host): temperature above 0 and no penalty.
     */
    public boolean samplesWithoutContext() { return !isGreedy() && !penalisesRepetition(); }

    public SamplerSettings withTopK(int k) { return new SamplerSettings(temperature, k, topP, minP, repetitionPenalty, repeatLastN, seed); }

    public SamplerSettings withTopP(float p) { return new SamplerSettings(temperature, topK, p, minP, repetitionPenalty, repeatLastN, seed); }

    public SamplerSettings withMinP(float p) { return new SamplerSettings(temperature, topK, topP, p, repetitionPenalty, repeatLastN, seed); }

    public SamplerSettings withRepetitionPenalty(float penalty, int lastN) {
        return new SamplerSettings(temperature, topK, topP, minP, penalty, lastN, seed);
    }

    public SamplerSettings withSeed(long s) { return new SamplerSettings(temperature, topK, topP, minP, repetitionPenalty, repeatLastN, s); }
}
