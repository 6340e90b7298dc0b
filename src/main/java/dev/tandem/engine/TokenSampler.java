package dev.tandem.engine;

import dev.tandem.runtime.ForwardResult;

/**
 * Chooses one sequence's next token from a row of logits. One per sequence (it keeps the history the
 * repetition penalty needs and the sequence's random stream). Kept behind this interface so the engine can
 * delegate to {@code dev.tandem.decode}'s samplers.
 */
interface TokenSampler {
    /** The next token from result row {@code row}. */
    int sample(ForwardResult result, int row);

    /** Records a token of the sequence (prompt or generated) for the repetition penalty. */
    void accept(int token);

    static TokenSampler of(SamplingSettings settings, int vocabularySize) {
        if (settings.isGreedy() && settings.repetitionPenalty() == 1) return new GreedySampler();
        return new ChainSampler(settings, vocabularySize);
    }

    /** Argmax, ties to the lower id: exactly what the bitwise contract's greedy decoding needs. */
    final class GreedySampler implements TokenSampler {
        @Override
        public int sample(ForwardResult result, int row) { return result.argmax(row); }

        @Override
        public void accept(int token) {}
    }
}
