package dev.tandem.decode;

import dev.tandem.runtime.PagedKvCache;

import java.util.List;
import java.util.SplittableRandom;

/** Proposes tokens for the main model to verify: a small model, or a lookup in the text so far. */
public interface Drafter {
    /** What a drafter needs to know about the generation it serves. */
    record Context(PagedKvCache tables, int sequence, int vocabularySize, SamplerSettings sampler,
                   SplittableRandom random, int draftMax) {}

    /** Starts drafting for one sequence; the session is closed when the generation ends. */
    Session open(Context context);

    /**
     * One session's part of a drafting round: {@link Session#propose} with these arguments. Several proposals of one
     * drafter go to {@link #proposeAll} together.
     */
    record Proposal(Session session, int[] context, int length, int max, float pMin, Draft out) {}

    /**
     * Runs the proposals of several of this drafter's sessions (distinct sequences). Each ends exactly as its own
     * {@link Session#propose} would: a drafter may batch their work (a draft model runs one pass per draft position
     * for all of them) only where the bitwise contract makes each sequence's rows independent of the others. By
     * default one after another.
     */
    default void proposeAll(List<Proposal> proposals) {
        for (Proposal p : proposals) p.session().propose(p.context(), p.length(), p.max(), p.pMin(), p.out());
    }

    /**
     * The cost by row count of this drafter's model passes, which it records as it runs them and draft-length
     * policies weigh; null when it runs no model passes (prompt lookup, whose cost is negligible beside a pass).
     */
    default PassCostModel passCosts() { return null; }

    /** The acceptance of this drafter's drafts over all its sessions, which {@link SpeculativeStep}s record. */
    AcceptanceHistory acceptance();

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
         * {@code length}; the caller (the scheduler) truncates them afterwards.
         */
        void propose(int[] context, int length, int max, float pMin, Draft out);

        /** The main model kept {@code length} positions: forget anything cached at or beyond it. */
        void rollback(int length);

        @Override
        void close();
    }
}
