package dev.tandem.model;

/**
 * The hyperparameters of one model, whichever file format it came from (GGUF metadata or {@code config.json}).
 *
 * @param ropeFrequencyFactors per rotary pair {@code i}, the divisor of its frequency (Llama 3.1 scaling, GGUF
 *                             {@code rope_freqs.weight}); {@code null} when frequencies are unscaled
 * @param qkvBias              Q, K and V projections have biases (Qwen2)
 * @param tiedEmbeddings       the output head is the token embedding matrix
 */
public record ModelConfig(
        Architecture architecture,
        String name,
        int vocabularySize,
        int hiddenSize,
        int layers,
        int heads,
        int kvHeads,
        int headDim,
        int ffnSize,
        int contextLength,
        float rmsNormEps,
        float ropeTheta,
        int ropeDimensions,
        RopeLayout ropeLayout,
        float[] ropeFrequencyFactors,
        boolean qkvBias,
        boolean tiedEmbeddings) {

    public ModelConfig {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0) {
            throw new IllegalArgumentException("attention heads " + heads + " must be a positive multiple of KV heads " + kvHeads);
        }
        if (ropeDimensions > headDim || ropeDimensions % 2 != 0) {
            throw new IllegalArgumentException("rotary dimensions " + ropeDimensions + " must be even and at most the head size " + headDim);
        }
        ropeFrequencyFactors = ropeFrequencyFactors == null ? null : ropeFrequencyFactors.clone();
    }

    @Override
    public float[] ropeFrequencyFactors() { return ropeFrequencyFactors == null ? null : ropeFrequencyFactors.clone(); }

    /** Width of the K (and V) projection: KV heads times head size. */
    public int kvDim() { return kvHeads * headDim; }

    /** Width of the Q projection. */
    public int qDim() { return heads * headDim; }

    /** Query heads sharing one KV head. */
    public int groupSize() { return heads / kvHeads; }

    /** Bytes of K and V for one position across all layers, for an element type of {@code elementBytes}. */
    public long kvBytesPerPosition(int elementBytes) { return 2L * layers * kvDim() * elementBytes; }

    /**
     * Llama 3 RoPE scaling as Hugging Face's {@code _compute_llama3_parameters} and llama.cpp's converter define
     * it, turned into per-pair divisors of the base frequencies (what GGUF stores as {@code rope_freqs.weight}).
     */
    public static float[] llama3FrequencyFactors(int ropeDimensions, float theta, double factor, double lowFreqFactor,
                                                 double highFreqFactor, int originalContext) {
        float[] out = new float[ropeDimensions / 2];
        double lowWavelen = originalContext / lowFreqFactor;
        double highWavelen = originalContext / highFreqFactor;
        for (int i = 0; i < out.length; i++) {
            double freq = 1.0 / Math.pow(theta, 2.0 * i / ropeDimensions);
            double wavelen = 2 * Math.PI / freq;
            if (wavelen < highWavelen) {
                out[i] = 1f;
            } else if (wavelen > lowWavelen) {
                out[i] = (float) factor;
            } else {
                double smooth = (originalContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                out[i] = (float) (1.0 / ((1 - smooth) / factor + smooth));
            }
        }
        return out;
    }
}
