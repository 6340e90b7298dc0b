package dev.tandem.runtime.cpu;

import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.forge.ForgeType;
import dev.tandem.model.Architecture;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A CPU forward pass allocates nothing once compiled: neither the calling thread nor the pool's workers, for
 * one-row decoding and for a five-row verification pass. Counted with the JVM's per-thread allocation counter
 * (not a timing), after enough passes for C2 to have compiled the hot code. Q8_0 (the KJV model) and the Q4_K_M
 * mix (a forged model whose rows span several super-blocks): the K-quant kernels are large methods, and where C2
 * runs out of inlining budget in one it leaves Vector API calls un-intrinsified, which allocate on every call.
 */
class DecodeAllocationTest {
    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf");

    @TempDir
    static Path forged;

    @ParameterizedTest(name = "{0}, {1} row(s) per pass")
    @CsvSource({"Q8_0, 1", "Q8_0, 5", "Q4_K_M, 1", "Q4_K_M, 5"})
    void forwardPassesAllocateNothing(String weights, int rowsPerPass) throws IOException {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (ModelFile file = ModelFile.open(weights.equals("Q8_0") ? MAIN : q4km());
             LoadedModel model = new CpuBackend().load(file, LoadOptions.defaults().withThreads(2))) {
            int context = 512;
            PagedKvCache tables = new PagedKvCache(16, context / 16);
            try (KvCache kv = model.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, context);
                // Batches made beforehand: the passes below move along the context, rowsPerPass positions each.
                List<Batch> batches = new ArrayList<>();
                for (int pos = 0; pos + rowsPerPass <= context; pos += rowsPerPass) {
                    int[] tokens = new int[rowsPerPass];
                    for (int i = 0; i < rowsPerPass; i++) tokens[i] = 3 + (pos + i) * 7 % 4000;
                    batches.add(Batch.of(seq, pos, tokens, true));
                }
                int warmUp = 500 + 3000 / rowsPerPass, measured = 300;
                for (int i = 0; i < warmUp; i++) model.forward(batches.get(i % batches.size()), kv);
                long[] ids = poolAndCaller();
                // The counter's own result array is allocated on the caller: an empty window measures it.
                long empty = -sum(threads.getThreadAllocatedBytes(ids)) + sum(threads.getThreadAllocatedBytes(ids));
                long before = sum(threads.getThreadAllocatedBytes(ids));
                for (int i = 0; i < measured; i++) model.forward(batches.get(i % batches.size()), kv);
                long allocated = sum(threads.getThreadAllocatedBytes(ids)) - before - empty;
                assertEquals(0, allocated, "bytes allocated by the caller and the tandem-cpu workers over " + measured + " passes");
            }
        }
    }

    /** A small Q4_K_M llama with rows of 3 (hidden 768) and 8 (FFN 2048) super-blocks, forged once per class. */
    private static synchronized Path q4km() throws IOException {
        Path path = forged.resolve("q4km.gguf");
        if (!java.nio.file.Files.exists(path)) {
            Forge.write(new ForgeSpec(Architecture.LLAMA, 4096, 768, 2, 6, 2, 128, 2048, 1024, ForgeType.Q4_K_M,
                    false, 10000f, 1, 1f, 0, null), path);
        }
        return path;
    }

    /** The calling thread and the CPU backend's workers. */
    private static long[] poolAndCaller() {
        List<Long> ids = new ArrayList<>(List.of(Thread.currentThread().threadId()));
        for (Thread t : Thread.getAllStackTraces().keySet()) {
            if (t.getName().startsWith("tandem-cpu-")) ids.add(t.threadId());
        }
        if (ids.size() < 2) throw new IllegalStateException("no tandem-cpu worker thread found");
        return ids.stream().mapToLong(Long::longValue).toArray();
    }

    private static long sum(long[] values) {
        long s = 0;
        for (long v : values) s += v;
        return s;
    }
}
