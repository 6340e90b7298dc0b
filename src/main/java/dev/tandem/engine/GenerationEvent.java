package dev.tandem.engine;

/** What a {@link Generation} publishes: token chunks, then exactly one {@link Finished}. */
public sealed interface GenerationEvent {
    /**
     * New text and the token ids it came from. {@code text} may be empty while a UTF-8 character or a possible
     * stop string is held back, and {@code tokenIds} may be empty when held-back text is released at the end.
     * {@code fromDraft}: the tokens were drafted and the main model accepted them (false for the main model's own
     * tokens and for released text), which a terminal may show apart.
     */
    record Chunk(String text, int[] tokenIds, boolean fromDraft) implements GenerationEvent {}

    /** The last event. */
    record Finished(FinishReason reason, GenerationStats stats) implements GenerationEvent {}
}
