package dev.tandem.runtime;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.HostGpuDriver;
import dev.tandem.runtime.cuda.HostKernels;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Shared prefix blocks in a backend's real K/V storage (the KJV draft model): a sequence that shares a cached
 * prefix and rolls back into it gets a private copy of the block (each backend's {@link PagedKvCache.BlockStorage}),
 * writes other tokens there, and both it and the sequence it shared with give the logits of a fresh prefill, bit
 * for bit (the bitwise contract makes a pass's rows independent of the others).
 */
class PrefixCacheStorageTest {
    static final Path DRAFT = Path.of("test-models/kjv-draft-q8_0.gguf");

    static float[][] rows(ForwardResult r, int from, int to) {
        float[][] out = new float[to - from][r.vocabularySize()];
        for (int i = from; i < to; i++) r.copyLogits(i, out[i - from]);
        return out;
    }

    @ParameterizedTest(name = "{0}, K/V {1}")
    @CsvSource({"cpu, F32", "cpu, BF16", "cuda-host, F16"})
    void aRollbackIntoASharedBlockCopiesItAndNeitherSequenceSeesTheOthersValues(String backendName, KvType kvType) {
        if (backendName.equals("cuda-host")) assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        try (Backend backend = backendName.equals("cpu") ? new CpuBackend() : new CudaBackend(new HostGpuDriver());
             ModelFile file = ModelFile.open(DRAFT);
             LoadedModel model = backend.load(file, LoadOptions.defaults().withThreads(1).withKvType(kvType))) {
            int vocabulary = model.config().vocabularySize();
            int[] p = new int[41], q = new int[40];
            for (int i = 0; i < p.length; i++) p[i] = (i * 37 + 11) % vocabulary;
            System.arraycopy(p, 0, q, 0, 20);
            for (int i = 20; i < q.length; i++) q[i] = (i * 53 + 5) % vocabulary;

            float[][] afterP, afterQ;
            PagedKvCache fresh = new PagedKvCache(16, 8);
            try (KvCache kv = model.createKvCache(fresh)) {
                int s = fresh.createSequence();
                fresh.reserve(s, 41);
                afterP = rows(model.forward(Batch.of(s, 0, p, true), kv), 40, 41);
                int t = fresh.createSequence();
                fresh.reserve(t, 40);
                afterQ = rows(model.forward(Batch.of(t, 0, q, true), kv), 20, 40);
            }

            PagedKvCache tables = new PagedKvCache(16, 8, "kjv-draft;" + kvType);
            try (KvCache kv = model.createKvCache(tables)) {
                int a = tables.createSequence();
                tables.reserve(a, 40);
                model.forward(Batch.of(a, 0, Arrays.copyOf(p, 40), false), kv);
                tables.publish(a, p, 40, 1);
                int b = tables.createSequence();
                assertEquals(16, tables.shareCachedPrefix(b, q, 40, 1), "q shares p's first block only");
                int c = tables.createSequence();
                assertEquals(32, tables.shareCachedPrefix(c, p, 40, 1));
                int shared = tables.block(c, 16);
                tables.truncate(c, 20);                               // into the shared second block
                assertNotEquals(shared, tables.block(c, 16), "c writes into a private copy");
                tables.reserve(c, 40);
                float[][] cRows = rows(model.forward(Batch.of(c, 20, Arrays.copyOfRange(q, 20, 40), true), kv), 0, 20);
                for (int i = 0; i < 20; i++) assertArrayEquals(afterQ[i], cRows[i], "c's position " + (20 + i) + ": the copy holds p's first 20 positions");
                tables.reserve(a, 41);
                float[][] aRow = rows(model.forward(Batch.of(a, 40, new int[] {p[40]}, false), kv), 0, 1);
                assertArrayEquals(afterP[0], aRow[0], "a's blocks are as its prefill left them");
                tables.release(a);
                tables.release(b);
                tables.release(c);
                assertEquals(0, tables.blocksInUse());
            }
        }
    }
}
