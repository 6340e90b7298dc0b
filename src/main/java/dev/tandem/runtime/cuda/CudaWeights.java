package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * A model's weights, uploaded once: matrices in the {@link WeightLayout} (the file's block bytes, or for Q8_0, Q4_0
 * and Q6_K the same values repacked so that quants load 16 bytes at a time); norms and biases as floats. A tensor
 * no kernel can read fails the upload, naming it.
 */
final class CudaWeights implements AutoCloseable {
    final DeviceMatrix embedding, output;
    final DeviceBuffer outputNorm;
    /** Per-dimension RoPE frequency factors, or null. */
    final DeviceBuffer ropeFactors;
    final LayerWeights[] layers;
    private final List<DeviceBuffer> uploaded = new ArrayList<>();

    /** Uploads {@code file}'s weights through {@code upload}; what was uploaded is freed again when one fails. */
    CudaWeights(DeviceUpload upload, ModelFile file) {
        ModelConfig c = file.config();
        try {
            embedding = matrix(upload, file.tensor("token_embd.weight"), true);
            output = c.tiedEmbeddings() ? embedding : matrix(upload, file.tensor("output.weight"), false);
            outputNorm = vector(upload, file.tensor("output_norm.weight"));
            float[] factors = c.ropeFrequencyFactors();
            ropeFactors = factors == null ? null : keep(upload.copy(factors));
            layers = new LayerWeights[c.layers()];
            for (int l = 0; l < c.layers(); l++) {
                String p = "blk." + l + ".";
                layers[l] = new LayerWeights(
                        vector(upload, file.tensor(p + "attn_norm.weight")),
                        matrix(upload, file.tensor(p + "attn_q.weight"), false),
                        matrix(upload, file.tensor(p + "attn_k.weight"), false),
                        matrix(upload, file.tensor(p + "attn_v.weight"), false),
                        matrix(upload, file.tensor(p + "attn_output.weight"), false),
                        c.qkvBias() ? vector(upload, file.tensor(p + "attn_q.bias")) : null,
                        c.qkvBias() ? vector(upload, file.tensor(p + "attn_k.bias")) : null,
                        c.qkvBias() ? vector(upload, file.tensor(p + "attn_v.bias")) : null,
                        vector(upload, file.tensor(p + "ffn_norm.weight")),
                        matrix(upload, file.tensor(p + "ffn_gate.weight"), false),
                        matrix(upload, file.tensor(p + "ffn_up.weight"), false),
                        matrix(upload, file.tensor(p + "ffn_down.weight"), false));
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    /** Every matrix a pass multiplies by: the layers' and the output head. */
    List<DeviceMatrix> projected() {
        List<DeviceMatrix> all = new ArrayList<>();
        all.add(output);
        for (LayerWeights l : layers) all.addAll(List.of(l.matrices()));
        return all;
    }

    private DeviceBuffer keep(DeviceBuffer b) {
        uploaded.add(b);
        return b;
    }

    /** A weight matrix in the device layout; fails, naming the tensor, when no kernel reads its type or shape. */
    private DeviceMatrix matrix(DeviceUpload upload, Tensor t, boolean isEmbedding) {
        try {
            if (!Kernel.hasMatvec(t.type())) throw new UnsupportedOperationException(t.type().toString());
            if (isEmbedding) Kernel.embedding(t.type());
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedWeightException("tensor '" + t.name() + "' has type " + t.type()
                    + ", which the CUDA backend has no kernel for (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)");
        }
        if (t.dimensions() != 2) throw new UnsupportedWeightException("tensor '" + t.name() + "' should be a matrix, it has shape " + t);
        int unit = LaunchGeometry.unit(t.type());
        if (t.columns() % unit != 0) {
            throw new UnsupportedWeightException("tensor '" + t.name() + "' (" + t.type() + ") has rows of " + t.columns()
                    + " elements; the CUDA kernels need a multiple of " + unit);
        }
        DeviceBuffer data = keep(upload.matrix(t.type(), t.data(), t.rows(), t.columns()));
        return new DeviceMatrix(t.name(), t.type(), data, t.columns(), t.rows());
    }

    /** A norm weight or bias, as floats on the device. */
    private DeviceBuffer vector(DeviceUpload upload, Tensor t) {
        int n = Math.toIntExact(t.elements());
        MemorySegment d = t.data();
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = switch (t.type()) {
                case F32 -> d.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                case F16 -> Float.float16ToFloat(d.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                case BF16 -> Float.intBitsToFloat(d.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i) << 16);
                default -> throw new UnsupportedWeightException("tensor '" + t.name() + "' is a vector of type " + t.type()
                        + "; the CUDA backend reads vectors as F32, F16 or BF16");
            };
        }
        return keep(upload.copy(out));
    }

    @Override
    public void close() {
        for (DeviceBuffer b : uploaded.reversed()) b.close();
        uploaded.clear();
    }
}
