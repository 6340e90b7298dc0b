package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A CPU forward pass allocates nothing once compiled: neither the calling thread nor the pool's workers, for
 * one-row decoding and for a five-row verification pass. Counted with the JVM's per-thread allocation counter
 * (not a timing), after enough passes for C2 to have compiled the hot code.
 */
class DecodeAllocationTest {
    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf");

    @ParameterizedTest(name = "{0} row(s) per pass")
    @ValueSource(ints = {1, 5})
    void forwardPassesAllocateNothing(int rowsPerPass) {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        try (ModelFile file = ModelFile.open(MAIN);
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
