package dev.tandem.engine;

import dev.tandem.testing.SharedData;

/**
 * Engines over the KJV main and draft models of the shared test data on the CPU backend, one sequence at a time and
 * one thread (the suite shares a small machine), for the tests that compare against the reference engine's records.
 */
final class KjvEngines {
    private KjvEngines() {}

    /** The F32 pair, drafting ahead during verifications or not. */
    static Engine f32(boolean draftAhead) { return open("kjv-main-f32.gguf", "kjv-draft-f32.gguf", draftAhead); }

    /** The Q8_0 pair, drafting ahead during verifications or not. */
    static Engine q8(boolean draftAhead) { return open("kjv-main-q8_0.gguf", "kjv-draft-q8_0.gguf", draftAhead); }

    private static Engine open(String main, String draft, boolean draftAhead) {
        return Tandem.builder().model(SharedData.kjv(main)).draft(SharedData.kjv(draft)).backend("cpu").threads(1)
                .parallel(1).draftAhead(draftAhead).build();
    }

    /** Greedy: {@code maxTokens} tokens after {@code prompt}, end-of-generation ignored as the reference runs did. */
    static GenerationRequest.Builder request(int[] prompt, int maxTokens) {
        return GenerationRequest.builder().promptTokens(prompt).maxTokens(maxTokens).ignoreEndOfGeneration(true)
                .sampling(SamplingSettings.greedy());
    }

    /** Drafting with the engine's draft model. */
    static DraftSettings draft(Engine engine) {
        return DraftSettings.model(engine.models().get(1).id());
    }
}
