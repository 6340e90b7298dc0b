package dev.tandem.model;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;

/**
 * What Tandem accepts from a model file, and the checks that hold every file (GGUF, safetensors, Hugging Face
 * folder) to it before anything is allocated or mapped from a number the file gave. A model file is untrusted
 * input: each count, size, offset and hyperparameter it declares is checked for range (with overflow-safe
 * arithmetic), and the tensors it describes for lying inside the data, not overlapping and having the shape
 * they need. Every failure is a {@link ModelFormatException} naming the file, the key or tensor, the value and
 * the limit.
 *
 * <p>The limits are far above every released model (the largest vocabulary is about 262k tokens, the widest
 * hidden size 16k, the deepest stack 126 layers) and far below what would exhaust a heap: what they bound is
 * allocated on the Java heap when a model loads (vocabulary arrays, per-thread attention scratch of the context
 * length, activation rows of the hidden and feed-forward sizes).
 */
public final class ModelLimits {
    private ModelLimits() {}

    public static final int MAX_VOCABULARY = 1 << 22;          // 4,194,304 tokens
    public static final int MAX_CONTEXT = 1 << 20;             // 1,048,576 positions
    public static final int MAX_HIDDEN = 1 << 16;              // 65,536
    public static final int MAX_FFN = 1 << 18;                 // 262,144
    public static final int MAX_LAYERS = 1024;
    public static final int MAX_HEADS = 1024;
    public static final int MAX_HEAD_DIM = 1024;
    public static final int MAX_TENSORS = 1 << 16;
    /** GGUF metadata is parsed onto the heap: these bound what one file can make it hold. */
    public static final long MAX_METADATA_STRING_BYTES = 64L << 20;
    public static final long MAX_METADATA_ARRAY_ELEMENTS = 1L << 22;
    /** Arrays of arrays of ...: no model uses more than one level; the limit keeps parsing shallow. */
    public static final int MAX_ARRAY_NESTING = 8;
    public static final long MAX_ALIGNMENT = 1L << 16;

    /**
     * {@code value} of {@code key} as an int, when it lies in {@code [min, max]}; otherwise a
     * {@link ModelFormatException} naming the key, the value and the range. Never narrows silently.
     */
    public static int count(Path file, String key, long value, long min, long max) {
        if (value < min || value > max) {
            throw new ModelFormatException(file, "'" + key + "' is " + value + "; allowed: " + min + " to " + max);
        }
        return (int) value;
    }

    /** A float hyperparameter that must be finite and lie in the open interval {@code (low, high)}. */
    public static float positive(Path file, String key, double value, double high) {
        if (!(value > 0 && value < high) || !Float.isFinite((float) value) || (float) value == 0f) {
            String shown = (double) (float) value == value ? Float.toString((float) value) : Double.toString(value);
            throw new ModelFormatException(file, "'" + key + "' is " + shown + "; allowed: a finite number above 0 and below " + high);
        }
        return (float) value;
    }

    /**
     * Checks a tensor's declared shape (ggml order, innermost first) against {@code type} and returns its byte
     * size: 1 to 4 dimensions, each at least 1, an element count that fits 64 bits, a row length that is a
     * whole number of blocks, and a row length and row count that fit an int (as {@link Tensor} indexes them).
     */
    public static long tensorBytes(Path file, String tensor, long[] shape, TensorType type) {
        if (shape.length < 1 || shape.length > 4) {
            throw new ModelFormatException(file, "tensor '" + tensor + "' has " + shape.length + " dimensions; allowed: 1 to 4");
        }
        long elements = 1;
        for (int d = 0; d < shape.length; d++) {
            if (shape[d] < 1) {
                throw new ModelFormatException(file, "tensor '" + tensor + "' has dimension " + d + " of size " + shape[d] + "; allowed: at least 1");
            }
            try {
                elements = Math.multiplyExact(elements, shape[d]);
            } catch (ArithmeticException e) {
                throw new ModelFormatException(file, "tensor '" + tensor + "' has shape " + Arrays.toString(shape)
                        + ", whose element count overflows 64 bits");
            }
        }
        if (shape[0] % type.blockSize() != 0) {
            throw new ModelFormatException(file, "tensor '" + tensor + "' row length " + shape[0] + " is not a multiple of the "
                    + type + " block size " + type.blockSize());
        }
        long rows = elements / shape[0];
        if (shape[0] > Integer.MAX_VALUE || rows > Integer.MAX_VALUE) {
            throw new ModelFormatException(file, "tensor '" + tensor + "' has shape " + Arrays.toString(shape) + " (row length "
                    + shape[0] + ", " + rows + " rows); allowed: at most " + Integer.MAX_VALUE + " each");
        }
        // elements / blockSize * blockBytes: at most (2^63 / 1) * 34 / 32 for the densest block; check exactly.
        try {
            return Math.multiplyExact(elements / type.blockSize(), (long) type.blockBytes());
        } catch (ArithmeticException e) {
            throw new ModelFormatException(file, "tensor '" + tensor + "' has shape " + Arrays.toString(shape)
                    + ", whose byte size overflows 64 bits");
        }
    }

    /** Where a tensor's bytes lie in its file, as the file declares them. */
    public record Extent(String tensor, long start, long bytes) {}

    /**
     * Checks that every extent lies inside {@code [dataStart, dataEnd)} and that no two overlap (a file whose
     * tensors share bytes is corrupt or crafted: writing one would silently change another).
     */
    public static void checkExtents(Path file, List<Extent> extents, long dataStart, long dataEnd) {
        for (Extent e : extents) {
            if (e.start < dataStart || e.bytes < 0 || e.start > dataEnd || e.bytes > dataEnd - e.start) {
                throw new ModelFormatException(file, "tensor '" + e.tensor + "' data (" + e.bytes + " bytes at offset " + e.start
                        + ") lies " + (e.start < dataStart ? "before" : "past the end of") + " the data section ["
                        + dataStart + ", " + dataEnd + ")");
            }
        }
        List<Extent> sorted = new ArrayList<>(extents);
        sorted.sort(Comparator.comparingLong(Extent::start));
        for (int i = 1; i < sorted.size(); i++) {
            Extent a = sorted.get(i - 1), b = sorted.get(i);
            if (a.start + a.bytes > b.start) {
                throw new ModelFormatException(file, "tensors '" + a.tensor + "' [" + a.start + ", " + (a.start + a.bytes)
                        + ") and '" + b.tensor + "' [" + b.start + ", " + (b.start + b.bytes) + ") overlap");
            }
        }
    }

    /**
     * Cross-checks a configuration against its tensors: {@code layers} must cover every {@code blk.N} tensor
     * present (a smaller count would silently drop layers).
     */
    public static void checkLayersPresent(Path file, String key, int layers, Iterable<String> tensorNames) {
        for (String name : tensorNames) {
            if (!name.startsWith("blk.")) continue;
            int dot = name.indexOf('.', 4);
            long n;
            try {
                n = Long.parseLong(name.substring(4, dot < 0 ? name.length() : dot));
            } catch (NumberFormatException e) {
                continue;
            }
            if (n >= layers) {
                throw new ModelFormatException(file, "'" + key + "' is " + layers + " but the file has tensor '" + name
                        + "' of layer " + n);
            }
        }
    }

    /**
     * Range checks of a configuration's sizes that the readers cannot name by key (derived values), and of its
     * floats. Each reader checks the keys it reads with {@link #count}; this is the last line for a config from
     * any source.
     */
    public static void checkConfig(Path file, ModelConfig c) {
        count(file, "hidden size", c.hiddenSize(), 1, MAX_HIDDEN);
        count(file, "head size", c.headDim(), 1, MAX_HEAD_DIM);
        count(file, "heads × head size", (long) c.heads() * c.headDim(), 1, MAX_HIDDEN);
        positive(file, "RMSNorm epsilon", c.rmsNormEps(), 1);
        positive(file, "RoPE theta", c.ropeTheta(), Float.MAX_VALUE);
        float[] factors = c.ropeFrequencyFactors();
        if (factors != null) {
            for (int i = 0; i < factors.length; i++) positive(file, "RoPE frequency factor " + i, factors[i], Float.MAX_VALUE);
        }
    }
}
