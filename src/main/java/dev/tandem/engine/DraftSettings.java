package dev.tandem.engine;

import dev.tandem.decode.DraftPolicy;

/**
 * Speculative decoding for one request. {@link Mode#MODEL} drafts with the loaded draft model named
 * {@code draftModel} (null: the main model's first draft), {@link Mode#NGRAM} with prompt lookup. The draft
 * length policy is fixed ({@code draftMax}, {@code draftMin}, {@code draftPMin}) or adaptive.
 *
 * <p>Fixed stays the default, also for a server request that names a draft without a length: those fields are
 * llama.cpp's controls with llama.cpp's defaults (the API contract), and on CUDA the fixed policy drafts ahead during
 * the verification, which the adaptive one cannot. Adaptive ({@code speculative.adaptive}) is what keeps speculation
 * from slowing a busy server: its sequences weigh their drafts against the whole batch's pass and take plain steps
 * when that pass is already full (the scheduler's {@code draftTogether}).
 */
public record DraftSettings(Mode mode, String draftModel, int draftMax, int draftMin, double draftPMin, boolean adaptive) {
    public enum Mode { OFF, MODEL, NGRAM }

    public static final int DEFAULT_MAX = 16;
    /** The longest draft a request may ask for ({@link DraftPolicy#MAX_DRAFT}). */
    public static final int MAX_DRAFT = DraftPolicy.MAX_DRAFT;
    public static final int DEFAULT_MIN = 0;
    public static final double DEFAULT_P_MIN = 0.75;

    public DraftSettings {
        if (mode == null) throw new IllegalArgumentException("mode is required");
        if (draftMax < 1 || draftMax > DraftPolicy.MAX_DRAFT) {
            throw new InvalidRequestException("draft max must be in [1, " + DraftPolicy.MAX_DRAFT + "], got " + draftMax, "n_max");
        }
        if (draftMin < 0 || draftMin > draftMax) {
            throw new InvalidRequestException("draft min must be in [0, draft max " + draftMax + "], got " + draftMin, "n_min");
        }
        if (!(draftPMin >= 0 && draftPMin <= 1)) throw new InvalidRequestException("draft p-min must be in [0, 1], got " + draftPMin, "p_min");
    }

    public static DraftSettings off() {
        return new DraftSettings(Mode.OFF, null, DEFAULT_MAX, DEFAULT_MIN, DEFAULT_P_MIN, false);
    }

    public static DraftSettings model(String name) {
        return new DraftSettings(Mode.MODEL, name, DEFAULT_MAX, DEFAULT_MIN, DEFAULT_P_MIN, false);
    }

    public static DraftSettings ngram() {
        return new DraftSettings(Mode.NGRAM, null, DEFAULT_MAX, DEFAULT_MIN, DEFAULT_P_MIN, false);
    }

    public boolean enabled() { return mode != Mode.OFF; }

    public DraftSettings withLimits(int max, int min, double pMin) { return new DraftSettings(mode, draftModel, max, min, pMin, adaptive); }

    public DraftSettings withAdaptive(boolean on) { return new DraftSettings(mode, draftModel, draftMax, draftMin, draftPMin, on); }
}
