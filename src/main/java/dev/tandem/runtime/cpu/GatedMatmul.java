package dev.tandem.runtime.cpu;

import java.util.function.IntConsumer;

/**
 * A feed-forward block's gate and up projections with SwiGLU, as one parallel loop: task c computes output
 * rows [c*CHUNK, +CHUNK) of both matrices, then gate = silu(gate) * up for those rows, so the activation
 * function (an exp per element) is spread over the threads with the products instead of running on the
 * caller alone. Every element is computed by the same operations as the separate steps would.
 */
final class GatedMatmul {
    private final CpuMatrix gate, up;
    private final float[] gateOut, upOut;
    private final IntConsumer task = this::runTask;
    private Activations x;      // of the multiply in progress

    GatedMatmul(CpuMatrix gate, CpuMatrix up, float[] gateOut, float[] upOut) {
        if (gate.rows() != up.rows() || gate.columns() != up.columns()) {
            throw new IllegalArgumentException("gate and up projections differ in shape: " + gate.rows() + " x " + gate.columns()
                    + " and " + up.rows() + " x " + up.columns());
        }
        this.gate = gate;
        this.up = up;
        this.gateOut = gateOut;
        this.upOut = upOut;
    }

    /** gateOut = silu(gate · x) * (up · x), row by row as the matrices' outputs are laid out. */
    void multiply(Activations x, WorkerPool pool) {
        gate.prepare(x, gateOut, pool);
        up.prepare(x, upOut, pool);
        this.x = x;
        try {
            pool.forEach(gate.chunks(), task);
        } finally {
            this.x = null;
        }
    }

    private void runTask(int chunk) {
        Activations x = this.x;
        gate.multiplyChunk(chunk, x, gateOut);
        up.multiplyChunk(chunk, x, upOut);
        int rows = gate.rows(), first = chunk * CpuMatrix.CHUNK, end = Math.min(rows, first + CpuMatrix.CHUNK);
        for (int r = 0; r < x.rows(); r++) {
            for (int i = r * rows + first; i < r * rows + end; i++) {
                float g = gateOut[i];
                gateOut[i] = g / (1.0f + (float) Math.exp(-g)) * upOut[i];
            }
        }
    }
}
