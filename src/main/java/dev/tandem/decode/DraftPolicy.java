package dev.tandem.decode;

/** How many tokens to draft before each verification pass. */
public sealed interface DraftPolicy permits DraftPolicy.Fixed, DraftPolicy.Adaptive {
    /**
     * The longest draft any policy may ask for: the draft buffers grow with its square, and a verification pass
     * of more rows than this costs more than it could save (llama.cpp's server defaults to 16).
     */
    int MAX_DRAFT = 32;

    private static void checkDraftMax(int draftMax) {
        if (draftMax < 1 || draftMax > MAX_DRAFT) throw new IllegalArgumentException("draft-max must be in [1, " + MAX_DRAFT + "], got " + draftMax);
    }

    /** Most tokens one draft may hold (sizes the buffers). */
    int draftMax();

    /** Drafting stops once the drafter's top probability falls below this. */
    float draftPMin();

    /**
     * Greedy decoding: drafts shorter than this are discarded (counted as ignored) and a plain step is taken
     * instead. Sampling verifies short drafts too, since discarding them would bias the output.
     */
    int draftMin();

    /**
     * The per-generation state that answers "how long a draft now?", for a sequence whose drafter has had the
     * acceptance {@code history} so far.
     */
    DraftLength start(AcceptanceHistory history);

    /**
     * llama.cpp's controls: draft up to {@code draftMax} tokens, stop when the draft's top probability is below
     * {@code draftPMin}, discard drafts shorter than {@code draftMin}.
     */
    record Fixed(int draftMax, int draftMin, float draftPMin) implements DraftPolicy {
        public Fixed {
            checkDraftMax(draftMax);
            if (draftMin < 0 || draftMin > draftMax) throw new IllegalArgumentException("draft-min must be in [0, draft-max=" + draftMax + "], got " + draftMin);
            if (!(draftPMin >= 0 && draftPMin <= 1)) throw new IllegalArgumentException("draft-p-min must be in [0, 1], got " + draftPMin);
        }

        /** draft-max 16, draft-min 0, draft-p-min 0.75. */
        public static Fixed defaults() { return new Fixed(16, 0, 0.75f); }

        /** {@code draftMax} tokens every time (p-min 0, min 0). */
        public static Fixed always(int draftMax) { return new Fixed(draftMax, 0, 0f); }

        @Override
        public DraftLength start(AcceptanceHistory history) { return new FixedDraftLength(draftMax); }
    }

    /**
     * Picks each draft's length to maximise the expected tokens per second of the step it joins, from the measured
     * pass costs by row count of the main and draft models and the measured acceptance; 0 (no speculation) when that
     * is fastest — alone, or because the batch's pass is already large ({@link AdaptiveDraftLength}).
     *
     * @param draftMax       longest draft considered
     * @param draftPMin      as in {@link Fixed}
     * @param probeInterval  while speculation is off, every this many steps one draft is tried to re-measure
     */
    record Adaptive(int draftMax, float draftPMin, int probeInterval) implements DraftPolicy {
        public Adaptive {
            checkDraftMax(draftMax);
            if (!(draftPMin >= 0 && draftPMin <= 1)) throw new IllegalArgumentException("draft-p-min must be in [0, 1], got " + draftPMin);
            if (probeInterval < 1) throw new IllegalArgumentException("probe interval must be at least 1, got " + probeInterval);
        }

        /** draft-max 16, p-min 0 (length is the policy's job), a probe every 32 plain steps. */
        public static Adaptive defaults() { return new Adaptive(16, 0f, 32); }

        @Override public int draftMin() { return 0; }

        @Override
        public DraftLength start(AcceptanceHistory history) { return new AdaptiveDraftLength(draftMax, probeInterval, history); }
    }
}
