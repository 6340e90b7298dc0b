package dev.tandem.model.quant;

import dev.tandem.model.TensorType;

/** Which {@link WeightFormat} implements which {@link TensorType}. */
public final class WeightFormats {
    private WeightFormats() {}

    public static WeightFormat of(TensorType type) {
        return switch (type) {
            case F32 -> FloatFormat.F32;
            case F16 -> FloatFormat.F16;
            case BF16 -> FloatFormat.BF16;
            case Q8_0 -> Q8_0Format.INSTANCE;
            case Q4_0 -> Q4_0Format.INSTANCE;
            case Q4_K -> Q4KFormat.INSTANCE;
            case Q5_K -> Q5KFormat.INSTANCE;
            case Q6_K -> Q6KFormat.INSTANCE;
        };
    }
}
