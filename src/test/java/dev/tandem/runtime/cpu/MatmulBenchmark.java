package dev.tandem.runtime.cpu;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.lang.foreign.Arena;
import java.util.concurrent.TimeUnit;

/**
 * JMH, not a test: one {@link CpuMatrix#multiply} per CPU kernel shape (tensor type x activation rows x threads)
 * on a {@value #ROWS} x {@value #COLUMNS} weight matrix, larger than a 32 MiB L3 cache for every type, so the
 * weights stream from memory as in decoding. An operation is {@code x.load} (the activations' quantisation,
 * as a pass pays it) then the multiply. {@code bench/jmh-kernels.sh} runs it and turns the times into GB/s of
 * weights ({@link #weightBytes}) and time relative to one row.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class MatmulBenchmark {
    /** Output rows of the weight matrix: Q4_K, the smallest type here, takes 42 MB. */
    public static final int ROWS = 24576;
    /** Input size (the hidden size of a 3B Llama). */
    public static final int COLUMNS = 3072;

    @Param({"Q8_0", "Q4_K", "Q6_K"})
    public String type;

    /** Activation rows of one multiply: 1 for decoding, more for a verification pass. */
    @Param({"1", "2", "5"})
    public int rows;

    @Param({"2", "1"})
    public int threads;

    private Arena arena;
    private WorkerPool pool;
    private CpuMatrix matrix;
    private Activations x;
    private float[] input, out;

    /** Bytes of the weight matrix of {@code type}: what one multiply reads from memory. */
    public static long weightBytes(TensorType type) { return type.bytesFor((long) ROWS * COLUMNS); }

    @Setup(Level.Trial)
    public void setUp() {
        arena = Arena.ofShared();
        Tensor t = RandomMatrices.matrix(TensorType.valueOf(type), ROWS, COLUMNS, 1, arena);
        matrix = CpuMatrix.of(t);
        pool = new WorkerPool(threads);
        x = new Activations(rows, COLUMNS);
        input = RandomMatrices.activations(rows, COLUMNS, 2);
        out = new float[rows * ROWS];
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        pool.close();
        arena.close();
    }

    @Benchmark
    public float[] multiply() {
        x.load(input, rows, COLUMNS);
        matrix.multiply(x, out, pool);
        return out;
    }
}
