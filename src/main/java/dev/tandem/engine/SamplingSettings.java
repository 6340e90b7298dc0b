package dev.tandem.engine;

import dev.tandem.decode.SamplerSettings;

/**
 * How the next token is chosen from the logits. Temperature 0 is greedy (argmax, ties to the lower id).
 * The same fields as {@code dev.tandem.decode.SamplerSettings}, and the same meaning as llama.cpp's samplers:
 * repetition penalty over the last {@code repeatLastN} tokens, then top-k (0: off), top-p (1: off), min-p
 * (0: off), then temperature.
 */
public record SamplingSettings(double temperature, int topK, double topP, double minP,
                               double repetitionPenalty, int repeatLastN, long seed) {
    /**
     * Each value is checked as the float the samplers use ({@link #samplerSettings()}): a top-p of 1e-320 passes as
     * a double but is 0 as a float, and a temperature of 1e39 becomes infinite.
     */
    public SamplingSettings {
        if (!(temperature >= 0) || !Float.isFinite((float) temperature)) {
            throw new InvalidRequestException("temperature must be a finite number at least 0, got " + temperature, "temperature");
        }
        if (topK < 0) throw new InvalidRequestException("top_k must be at least 0, got " + topK, "top_k");
        if (!((float) topP > 0 && topP <= 1)) throw new InvalidRequestException("top_p must be in (0, 1] (as a 32-bit float), got " + topP, "top_p");
        if (!(minP >= 0 && minP <= 1)) throw new InvalidRequestException("min_p must be in [0, 1], got " + minP, "min_p");
        if (!((float) repetitionPenalty > 0) || !Float.isFinite((float) repetitionPenalty)) {
            throw new InvalidRequestException("repetition penalty must be a finite positive number, got " + repetitionPenalty, "repeat_penalty");
        }
        if (repeatLastN < 0) throw new InvalidRequestException("repeat_last_n must be at least 0, got " + repeatLastN, "repeat_last_n");
    }

    /** Argmax decoding. */
    public static SamplingSettings greedy() {
        return new SamplingSettings(0, 0, 1, 0, 1, 64, 0);
    }

    /** llama.cpp's defaults: temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, no repetition penalty. */
    public static SamplingSettings defaults(long seed) {
        return new SamplingSettings(0.8, 40, 0.95, 0.05, 1, 64, seed);
    }

    public boolean isGreedy() { return temperature == 0; }

    /** The same chain in {@code dev.tandem.decode}'s terms: the one sampler implementation the engine runs. */
    public SamplerSettings samplerSettings() {
        return new SamplerSettings((float) temperature, topK, (float) topP, (float) minP, (float) repetitionPenalty, repeatLastN, seed);
    }

    public SamplingSettings withTemperature(double t) { return new SamplingSettings(t, topK, topP, minP, repetitionPenalty, repeatLastN, seed); }

    public SamplingSettings withTopK(int k) { return new SamplingSettings(temperature, k, topP, minP, repetitionPenalty, repeatLastN, seed); }

    public SamplingSettings withTopP(double p) { return new SamplingSettings(temperature, topK, p, minP, repetitionPenalty, repeatLastN, seed); }

    public SamplingSettings withMinP(double p) { return new SamplingSettings(temperature, topK, topP, p, repetitionPenalty, repeatLastN, seed); }

    public SamplingSettings withSeed(long s) { return new SamplingSettings(temperature, topK, topP, minP, repetitionPenalty, repeatLastN, s); }
}
