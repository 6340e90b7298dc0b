package dev.tandem.decode;

import dev.tandem.runtime.PagedKvCache;

import java.util.SplittableRandom;

/** Proposes tokens for the main model to verify: a small model, or a lookup in the text so far. */
public interface Drafter {
    /** What a drafter needs to know about the generation it serves. */
    record Context(PagedKvCache tables, int sequence, int vocabularySize, SamplerSettings sampler,
                   SplittableRandom random, int draftMax) {}

    /** Starts drafting for one sequence; the session is closed when the generation ends. */
    Session open(Context context);

    /** Largest position count the drafter can work with (its model's context length); unlimited by default. */
    default int contextLength() { return Integer.MAX_VALUE; }

    /** One generation's drafting state. */
    interface Session extends AutoCloseable {
        /**
         * The prompt is {@code tokens[0..length)}; a model drafter runs it now, in one pass. The main model's
         * prefill may still be running (forwardAsync), so do not wait for anything but your own work.
         */
        void prefill(int[] tokens, int length);

        /**
         * {@link #prefill(int[], int)} where positions {@code [0, cached)} of this drafter's K/V storage already hold
         * the prompt's first tokens (a prefix cache shared them): only {@code tokens[cached, length)} run. Drafters
         * without K/V storage of their own need not tell the two apart.
         */
        default void prefill(int[] tokens, int cached, int length) {
            prefill(tokens, length);
        }

        /**
         * Positions {@code [0, n)} of this drafter's own K/V storage hold the context's tokens (what a prefix cache
         * may keep of its work when the generation ends); 0 for a drafter without storage.
         */
        default int storedLength() { return 0; }

        /**
         * Proposes up to {@code max} tokens continuing {@code context[0..length)} into {@code out} (cleared
         * first), stopping early when the drafter's top probability falls below {@code pMin}. May use
         * {@code context[length..length+max)} as scratch. Shared K/V tables may be reserved beyond
         * {@code length}; the generator truncates them afterwards.
         */
        void propose(int[] context, int length, int max, float pMin, Draft out);

        /** The main model kept {@code length} positions: forget anything cached at or beyond it. */
        void rollback(int length);

        @Override
        void close();
    }
}
