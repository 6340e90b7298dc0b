package dev.tandem.runtime.cpu;

/**
 * Per-thread scratch of the matmul kernels: a tile of up to {@link MatmulKernel#TILE} weight rows unpacked
 * to int-valued (or plain) floats, with their per-group scales. Grows when a wider matrix comes along, so
 * allocation happens only on a thread's first multiply of a new width.
 */
final class MatmulScratch {
    private static final ThreadLocal<MatmulScratch> PER_THREAD = ThreadLocal.withInitial(MatmulScratch::new);

    float[] weights = new float[0];     // slot k at k*columns
    float[] scales = new float[0];      // slot k at k*groups
    float[] minScales = new float[0];   // K-quants: dmin per group, slot k at k*groups
    int[] mins = new int[0];            // K-quants: 6-bit min per 32 elements, slot k at k*(columns/32)
    short[] halves = new short[0];      // raw F16/BF16 row
    final float[] lanes = new float[64];
    final int[] subScales = new int[16];    // K-quant sub-block scales of the block being unpacked

    static MatmulScratch forColumns(int columns) {
        MatmulScratch s = PER_THREAD.get();
        if (s.weights.length < MatmulKernel.TILE * columns) {
            s.weights = new float[MatmulKernel.TILE * columns];
            s.scales = new float[MatmulKernel.TILE * columns / 32];
            s.minScales = new float[MatmulKernel.TILE * columns / 32];
            s.mins = new int[MatmulKernel.TILE * columns / 32];
            s.halves = new short[columns];
        }
        return s;
    }
}
