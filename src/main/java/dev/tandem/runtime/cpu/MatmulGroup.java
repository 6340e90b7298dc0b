package dev.tandem.runtime.cpu;

import java.util.function.IntConsumer;

/**
 * Matrices that multiply the same activations (a layer's Wq, Wk, Wv; its gate and up projections), run as one
 * parallel loop over all their chunks: the workers are handed work once instead of once per matrix, which is
 * what a small model's pass is made of. Each output is computed exactly as {@link CpuMatrix#multiply} computes
 * it. Outputs are fixed at construction (the model's scratch), so a multiply allocates nothing.
 */
final class MatmulGroup {
    private final CpuMatrix[] matrices;
    private final float[][] outputs;
    /** Task t belongs to matrix i where firstTask[i] <= t < firstTask[i+1]. */
    private final int[] firstTask;
    private final IntConsumer task = this::runTask;
    private Activations x;      // of the multiply in progress

    MatmulGroup(CpuMatrix[] matrices, float[][] outputs) {
        if (matrices.length != outputs.length || matrices.length == 0) {
            throw new IllegalArgumentException("a group needs one output per matrix, got " + matrices.length + " and " + outputs.length);
        }
        this.matrices = matrices.clone();
        this.outputs = outputs.clone();
        this.firstTask = new int[matrices.length + 1];
        for (int i = 0; i < matrices.length; i++) firstTask[i + 1] = firstTask[i] + matrices[i].chunks();
    }

    /** outputs[i] = matrices[i] · x for every i. */
    void multiply(Activations x, WorkerPool pool) {
        for (int i = 0; i < matrices.length; i++) matrices[i].prepare(x, outputs[i], pool);
        this.x = x;
        try {
            pool.forEach(firstTask[matrices.length], task);
        } finally {
            this.x = null;
        }
    }

    private void runTask(int t) {
        int i = 0;
        while (t >= firstTask[i + 1]) i++;
        matrices[i].multiplyChunk(t - firstTask[i], x, outputs[i]);
    }
}
