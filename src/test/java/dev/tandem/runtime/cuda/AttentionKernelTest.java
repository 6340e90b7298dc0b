package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Attention over the paged KV cache: R = 5 consecutive query rows of one sequence (a verification pass), GQA
 * with 8 query heads over 2 KV heads (20 query pairs a KV head: two passes of 16 over each chunk), blocks of 16
 * positions. The first query position is 0 (tiny contexts), 125 (the rows straddle the 128-position split) or 291
 * (three chunks); head dimensions 64 (one element a lane) and 128 (four). Unused cache slots hold NaN, so a
 * position past a row's context that leaked into its sums would show.
 */
class AttentionKernelTest extends KernelTestSupport {
    static final int HEADS = 8, KV_HEADS = 2, BLOCK = 16, POOL_BLOCKS = 32, ROWS = 5;
    int HEAD_DIM;
    float SCALE;

    /** A sequence's K/V written into a pool through its block table by kv_append. */
    record Cache(MemorySegment k, MemorySegment v, MemorySegment table) {}

    @ParameterizedTest
    @CsvSource({"0, 64", "125, 64", "291, 64", "0, 128", "125, 128", "291, 128"})
    void pagedAttentionIsExactAndBatchInvariant(int firstPosition, int headDim) {
        HEAD_DIM = headDim;
        SCALE = (float) (1 / Math.sqrt(HEAD_DIM));
        int length = firstPosition + ROWS;  // the sequence holds positions 0..length-1
        int kvRow = KV_HEADS * HEAD_DIM;
        Random random = new Random(100 + firstPosition);
        float[] keys = randomFloats(random, length * kvRow, 1f), values = randomFloats(random, length * kvRow, 1f);
        float[] q = randomFloats(random, ROWS * HEADS * HEAD_DIM, 1f);
        int[] positions = IntStream.range(firstPosition, length).toArray();
        int blocks = (length + BLOCK - 1) / BLOCK;

        List<Integer> pool = new ArrayList<>(IntStream.range(0, POOL_BLOCKS).boxed().toList());
        Collections.shuffle(pool, random);
        int[] scattered = pool.subList(0, blocks).stream().mapToInt(Integer::intValue).toArray();
        int[] contiguous = IntStream.range(0, blocks).toArray();

        Cache paged = fill(scattered, keys, values, length);
        Cache plain = fill(contiguous, keys, values, length);
        checkPlacement(paged, scattered, keys, length);

        float[] pagedOut = attend(paged, q, positions);
        float[] plainOut = attend(plain, q, positions);
        for (int i = 0; i < pagedOut.length; i++) {
            assertEquals(Float.floatToRawIntBits(plainOut[i]), Float.floatToRawIntBits(pagedOut[i]),
                    "paged (non-contiguous table) and contiguous caches differ at " + i);
        }

        // Against softmax(q k^T * scale) v over contiguous K/V, in double: 1e-5 of the largest |v|.
        double[] expected = reference(q, keys, values, positions);
        double[] mag = new double[expected.length];
        java.util.Arrays.fill(mag, 1.0);
        assertClose("attention", expected, pagedOut, mag, 1e-5);

        // Each row alone (a plain decode step at that position) gives the same bits as in the 5-row pass.
        int rowSize = HEADS * HEAD_DIM;
        for (int r = 0; r < ROWS; r++) {
            float[] qr = java.util.Arrays.copyOfRange(q, r * rowSize, (r + 1) * rowSize);
            float[] alone = attend(paged, qr, new int[] {positions[r]});
            for (int i = 0; i < rowSize; i++) {
                assertEquals(Float.floatToRawIntBits(pagedOut[r * rowSize + i]), Float.floatToRawIntBits(alone[i]),
                        "row at position " + positions[r] + " differs between R=1 and R=" + ROWS + " at " + i);
            }
        }
    }

    private Cache fill(int[] table, float[] keys, float[] values, int length) {
        long poolFloats = (long) POOL_BLOCKS * BLOCK * KV_HEADS * HEAD_DIM;
        float[] nan = new float[(int) poolFloats];
        java.util.Arrays.fill(nan, Float.NaN);
        MemorySegment k = floats(nan), v = floats(nan), t = ints(table);
        kernels.launch(Kernel.KV_APPEND, LaunchGeometry.kvAppend(length), floats(keys), floats(values), k, v, t,
                ints(IntStream.range(0, length).toArray()), KV_HEADS, HEAD_DIM, BLOCK);
        return new Cache(k, v, t);
    }

    /** Position p's K row sits at [table[p / 16]][p % 16] of the pool. */
    private void checkPlacement(Cache cache, int[] table, float[] keys, int length) {
        int kvRow = KV_HEADS * HEAD_DIM;
        float[] pool = read(cache.k(), POOL_BLOCKS * BLOCK * kvRow);
        for (int p = 0; p < length; p++) {
            int slot = (table[p / BLOCK] * BLOCK + p % BLOCK) * kvRow;
            for (int i = 0; i < kvRow; i++) assertEquals(keys[p * kvRow + i], pool[slot + i], 0f, "K of position " + p);
        }
    }

    private float[] attend(Cache cache, float[] q, int[] positions) {
        int rows = positions.length;
        int maxChunks = LaunchGeometry.attentionChunkCapacity(positions[rows - 1] + 1);
        int partials = rows * HEADS * maxChunks;
        MemorySegment pos = ints(positions), partialOut = floats(partials * HEAD_DIM);
        MemorySegment partialMax = floats(partials), partialSum = floats(partials), out = floats(rows * HEADS * HEAD_DIM);
        MemorySegment done = ints(new int[KV_HEADS]);
        kernels.launch(Kernel.ATTENTION_PARTIAL, LaunchGeometry.attentionPartial(maxChunks, KV_HEADS, HEAD_DIM),
                floats(q), cache.k(), cache.v(), cache.table(), pos, partialOut, partialMax, partialSum,
                rows, HEADS, KV_HEADS, HEAD_DIM, BLOCK, maxChunks, SCALE, out, done);
        assertArrayEquals(new int[KV_HEADS], readInts(done, KV_HEADS), "the last blocks reset their KV heads' counts");
        return read(out, rows * HEADS * HEAD_DIM);
    }

    private double[] reference(float[] q, float[] keys, float[] values, int[] positions) {
        double[] out = new double[positions.length * HEADS * HEAD_DIM];
        int kvRow = KV_HEADS * HEAD_DIM;
        for (int r = 0; r < positions.length; r++) {
            for (int h = 0; h < HEADS; h++) {
                int kvh = h / (HEADS / KV_HEADS), qo = (r * HEADS + h) * HEAD_DIM;
                int n = positions[r] + 1;
                double[] s = new double[n];
                double max = Double.NEGATIVE_INFINITY;
                for (int p = 0; p < n; p++) {
                    double dot = 0;
                    for (int d = 0; d < HEAD_DIM; d++) dot += (double) q[qo + d] * keys[p * kvRow + kvh * HEAD_DIM + d];
                    s[p] = dot * SCALE;
                    max = Math.max(max, s[p]);
                }
                double total = 0;
                for (int p = 0; p < n; p++) total += s[p] = Math.exp(s[p] - max);
                for (int d = 0; d < HEAD_DIM; d++) {
                    double o = 0;
                    for (int p = 0; p < n; p++) o += s[p] * values[p * kvRow + kvh * HEAD_DIM + d];
                    out[qo + d] = o / total;
                }
            }
        }
        return out;
    }
}
