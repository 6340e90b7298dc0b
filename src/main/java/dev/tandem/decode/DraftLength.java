package dev.tandem.decode;

/**
 * The draft length of the next step, and the measurements an adaptive policy learns from. The generator reports
 * every step; fixed policies ignore the reports.
 */
public interface DraftLength {
    /** Tokens to draft next, at most {@code limit}; 0 means a plain step. */
    int next(int limit);

    /** A plain one-row step of the main model took {@code nanos}. */
    default void plainStep(long nanos) {}

    /** Drafting {@code tokens} tokens took {@code nanos} (the catch-up pass included). */
    default void drafted(int tokens, long nanos) {}

    /** A verification pass of {@code rows} rows took {@code nanos} and the main model agreed with {@code agreed} of {@code drafted}. */
    default void verified(int rows, long nanos, int drafted, int agreed) {}
}
