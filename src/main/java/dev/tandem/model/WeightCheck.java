package dev.tandem.model;

/** Checks that a model file has every weight its configuration needs, in the shape it needs. */
public final class WeightCheck {
    private WeightCheck() {}

    /** Throws a {@link ModelFormatException} naming the first missing or misshapen tensor. */
    public static void check(ModelFile model) {
        ModelConfig c = model.config();
        expect(model, "token_embd.weight", c.hiddenSize(), c.vocabularySize());
        expect(model, "output_norm.weight", c.hiddenSize());
        if (!c.tiedEmbeddings()) expect(model, "output.weight", c.hiddenSize(), c.vocabularySize());
        for (int l = 0; l < c.layers(); l++) {
            String p = "blk." + l + ".";
            expect(model, p + "attn_norm.weight", c.hiddenSize());
            expect(model, p + "attn_q.weight", c.hiddenSize(), c.qDim());
            expect(model, p + "attn_k.weight", c.hiddenSize(), c.kvDim());
            expect(model, p + "attn_v.weight", c.hiddenSize(), c.kvDim());
            expect(model, p + "attn_output.weight", c.qDim(), c.hiddenSize());
            expect(model, p + "ffn_norm.weight", c.hiddenSize());
            expect(model, p + "ffn_gate.weight", c.hiddenSize(), c.ffnSize());
            expect(model, p + "ffn_up.weight", c.hiddenSize(), c.ffnSize());
            expect(model, p + "ffn_down.weight", c.ffnSize(), c.hiddenSize());
            if (c.qkvBias()) {
                expect(model, p + "attn_q.bias", c.qDim());
                expect(model, p + "attn_k.bias", c.kvDim());
                expect(model, p + "attn_v.bias", c.kvDim());
            }
        }
    }

    private static void expect(ModelFile model, String name, long... shape) {
        Tensor t = model.tensor(name);
        if (!java.util.Arrays.equals(t.shape(), shape)) {
            throw new ModelFormatException(model.path(), "tensor '" + name + "' has shape " + java.util.Arrays.toString(t.shape())
                    + " but the configuration needs " + java.util.Arrays.toString(shape));
        }
        if (shape.length == 1 && t.type() != TensorType.F32 && t.type() != TensorType.F16 && t.type() != TensorType.BF16) {
            throw new ModelFormatException(model.path(), "tensor '" + name + "' is " + t.type() + "; norm and bias vectors must be F32, F16 or BF16");
        }
    }
}
