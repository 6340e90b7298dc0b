package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Not a test: where a one-row forward pass of a model goes. Times the pass, then every weight matrix of the model
 * multiplied alone with one activation row, interleaved 15 times, and prints the medians and each matrix shape's
 * GB/s (the time outside the matrices is the pass's own overhead; a shape far below the others is a kernel problem).
 * Run with {@code java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED
 * -cp target/classes:target/test-classes dev.tandem.runtime.cpu.PassVsKernels MODEL.gguf THREADS}.
 */
public final class PassVsKernels {
    public static void main(String[] args) {
        int threads = Integer.parseInt(args[1]), rounds = 15;
        try (ModelFile f = ModelFile.open(Path.of(args[0]));
             LoadedModel model = new CpuBackend().load(f, new LoadOptions(threads, KvType.F32, 256));
             WorkerPool pool = new WorkerPool(threads)) {
            List<CpuMatrix> matrices = new ArrayList<>();
            for (Tensor t : f.tensors()) {
                if (t.shape().length == 2 && !t.name().equals("token_embd.weight")) matrices.add(CpuMatrix.of(t));
            }
            if (f.findTensor("output.weight").isEmpty()) matrices.add(CpuMatrix.of(f.tensor("token_embd.weight")));  // tied head
            Map<Integer, Activations> inputs = new HashMap<>();
            int widest = 0;
            for (CpuMatrix m : matrices) {
                widest = Math.max(widest, m.rows());
                inputs.computeIfAbsent(m.columns(), c -> {
                    Activations a = new Activations(1, c);
                    a.load(RandomMatrices.activations(1, c, 3), 1, c);
                    return a;
                });
            }
            float[] out = new float[widest];
            long[] pass = new long[rounds], alone = new long[rounds], perMatrix = new long[matrices.size()];
            int[] context = new int[40];
            for (int i = 0; i < context.length; i++) context[i] = 100 + 7 * i;
            PagedKvCache tables = new PagedKvCache(16, 8);
            try (KvCache kv = model.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, context.length);
                model.forward(Batch.of(seq, 0, context, false), kv);
                for (int round = -3; round < rounds; round++) {  // three rounds of warm-up
                    tables.reserve(seq, context.length + 1);
                    long t0 = System.nanoTime();
                    model.forward(Batch.of(seq, context.length, new int[] {5}, true), kv);
                    long t1 = System.nanoTime();
                    tables.truncate(seq, context.length);
                    for (int k = 0; k < matrices.size(); k++) {
                        long m0 = System.nanoTime();
                        matrices.get(k).multiply(inputs.get(matrices.get(k).columns()), out, pool);
                        if (round >= 0) perMatrix[k] += System.nanoTime() - m0;
                    }
                    if (round >= 0) {
                        pass[round] = t1 - t0;
                        alone[round] = System.nanoTime() - t1;
                    }
                }
            }
            Map<String, double[]> byShape = new TreeMap<>();  // nanos, bytes, count
            for (int k = 0; k < matrices.size(); k++) {
                CpuMatrix m = matrices.get(k);
                double[] v = byShape.computeIfAbsent(m.rows() + " x " + m.columns() + " " + m.type(), key -> new double[3]);
                v[0] += perMatrix[k] / (double) rounds;
                v[1] += m.type().bytesFor((long) m.rows() * m.columns());
                v[2]++;
            }
            byShape.forEach((shape, v) -> System.out.printf("%-24s x%3.0f  %9.1f us each  %5.1f GB/s%n", shape, v[2], v[0] / v[2] / 1e3, v[1] / v[0]));
            Arrays.sort(pass);
            Arrays.sort(alone);
            System.out.printf("%d matrices; one-row pass: median %.1f ms (best %.1f); its matrices alone: median %.1f ms (best %.1f)%n",
                    matrices.size(), pass[rounds / 2] / 1e6, pass[0] / 1e6, alone[rounds / 2] / 1e6, alone[0] / 1e6);
        }
    }
}
