package dev.tandem.runtime.cuda;

import dev.tandem.runtime.ForwardResult;

/** A pass's result: the ids and top probabilities came back with the pass; logits are copied on first use. */
final class PassResult implements CudaForwardResult {
    private final CudaModel model;
    private final long pass;
    private final int[] argmax;
    /** Each row's top-token probability, from the device with the ids. */
    private final float[] tops;
    /** Verifications: the accepted length; sampled ones also the next token (else -1). */
    private final int accepted, next;
    /** A draft draw's top-token probability (else unused). */
    private final float top;
    /** A sampled verification pass's (accepted, next) per verified sequence, or null. */
    private final int[] sampled;
    private final int vocab;
    private float[] values;

    PassResult(CudaModel model, long pass, int[] argmax, float[] tops, int accepted, int next, float top, int[] sampled) {
        this.model = model;
        this.pass = pass;
        this.argmax = argmax;
        this.tops = tops;
        this.accepted = accepted;
        this.next = next;
        this.top = top;
        this.sampled = sampled;
        this.vocab = model.config().vocabularySize();
    }

    int accepted() { return accepted; }

    int next() { return next; }

    /** A sampled verification pass's (accepted, next) pairs, one per verified sequence in their order. */
    int[] sampledVerdicts() { return sampled; }

    /** A draft draw's q: the probability of its top token. */
    float drawnTopProbability() { return top; }

    @Override public int[] argmaxIds() { return argmax.clone(); }

    private float[] values() {
        if (values == null) values = model.fetchLogits(pass, argmax.length);
        return values;
    }

    @Override public int rows() { return argmax.length; }

    @Override public int vocabularySize() { return vocab; }

    @Override public float logit(int row, int token) { return values()[row * vocab + token]; }

    @Override
    public void copyLogits(int row, float[] dst) { System.arraycopy(values(), row * vocab, dst, 0, vocab); }

    /** From the device's argmax kernel: ties to the lower id, as {@link ForwardResult#argmax} says. */
    @Override public int argmax(int row) { return argmax[row]; }

    /** From the argmax kernel, which also sums the row's softmax. */
    @Override public float topProbability(int row) { return tops[row]; }
}
