package dev.tandem.decode;

/** Why a generation ended. */
public enum StopReason {
    /** {@link GenerationLimits#maxTokens()} tokens were generated. */
    MAX_TOKENS,
    /** An end-of-generation token was generated (it is the last token of the result). */
    END_OF_GENERATION,
    /** The {@link TokenListener} asked to stop. */
    LISTENER,
    /** The context length of a model was reached. */
    CONTEXT_FULL
}
