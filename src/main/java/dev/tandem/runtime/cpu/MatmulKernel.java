package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;

/**
 * The arithmetic of one weight type: how a weight row is unpacked into {@link MatmulScratch} and how the
 * unpacked row is dotted with one activation row.
 *
 * <p>Bitwise contract: the dot of weight row o with activation row r is computed by the same operations in
 * the same order whatever the tile, batch or thread it runs in: a fixed number of lanes, each accumulating
 * its own elements in column order, then the lanes summed in lane order. The 4-row and 1-row paths do
 * exactly the same per-row operations.
 */
abstract sealed class MatmulKernel permits MatmulFloatKernel, MatmulBlockKernel {
    /** Weight rows unpacked and dotted together, so that each activation load serves four rows. */
    static final int TILE = 4;

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int L = F.length();
    /** Bytes loaded at a time for unpacking: at least 8 (the smallest byte vector), at most 16. */
    static final VectorSpecies<Byte> B = VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, L * 8)));
    static final int BL = B.length();
    static final int PARTS = BL / L;
    static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;

    static {
        if (L > 16) throw new IllegalStateException("vector species of " + L + " floats is not supported");
    }

    final Tensor tensor;
    final MemorySegment data;
    final int rows;
    final int columns;
    final long rowBytes;

    MatmulKernel(Tensor tensor) {
        this.tensor = tensor;
        this.data = tensor.data();
        this.rows = tensor.rows();
        this.columns = tensor.columns();
        this.rowBytes = tensor.rowBytes();
    }

    /** Makes the activation form this kernel reads (quantisation happens at most once per load). */
    abstract void prepare(Activations x, WorkerPool pool);

    /** Unpacks weight row {@code row} into slot {@code slot} of s. */
    abstract void unpack(int row, MatmulScratch s, int slot);

    /** out[outAt + k] = dot(slot k, activation row r) for k < n (n <= TILE). */
    abstract void dot(MatmulScratch s, int n, Activations x, int r, float[] out, int outAt);

    /** Sum of the lanes in lane order: a fixed order, unlike reduceLanes. */
    static float sumLanes(FloatVector v, float[] lanes) {
        v.intoArray(lanes, 0);
        return sumLanes(lanes);
    }

    /**
     * lanes[0..L) summed in lane order. The direct kernels store their accumulator and call this rather than
     * the vector form: a helper that takes a vector is boxed wherever C2 declines to inline it.
     */
    static float sumLanes(float[] lanes) {
        float sum = 0;
        for (int i = 0; i < L; i++) sum += lanes[i];
        return sum;
    }

    /** Converts BL bytes to floats at dst[at..at+BL). */
    static void toFloats(ByteVector v, float[] dst, int at) {
        for (int p = 0; p < PARTS; p++) ((FloatVector) v.convertShape(VectorOperators.B2F, F, p)).intoArray(dst, at + p * L);
    }

    /** Converts BL bytes to floats times scale (exact: small integers) at dst[at..at+BL). */
    static void toFloats(ByteVector v, float scale, float[] dst, int at) {
        for (int p = 0; p < PARTS; p++) ((FloatVector) v.convertShape(VectorOperators.B2F, F, p)).mul(scale).intoArray(dst, at + p * L);
    }

    static ByteVector bytes(MemorySegment data, long at) {
        return ByteVector.fromMemorySegment(B, data, at, LE);
    }
}
