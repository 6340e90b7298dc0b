package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * A 16-bit K/V cache on the device (--kv-type f16|bf16): values are rounded to nearest even when appended and
 * widened exactly when attention reads them, as the CPU backend's 16-bit cache does. So the two backends agree
 * within float rounding, as with F32, except where a K/V value that differs in its last float bits falls on the
 * other side of a 16-bit rounding boundary; and the bitwise batch contract holds for every cache type.
 */
class CudaKvTypeTest {
    /**
     * Largest allowed |cuda - cpu| per logit, relative to the row's largest |logit| (at least 1): F32's bound.
     * Measured on the KJV draft, prompt + 8 decode steps: 5.0e-6 (F16), 1.3e-6 (BF16).
     */
    static final float TOLERANCE = 1e-4f;
    static final int ROWS = 17;

    static CudaBackend cuda;
    static ModelFile file;
    static Generation reference;

    @BeforeAll
    static void open() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        cuda = CudaBackend.onHost();
        file = ModelFile.open(SharedData.kjv("kjv-draft-f32.gguf"));
        reference = ReferenceRecords.generations("kjv-draft-f32.jsonl").getFirst();
    }

    @AfterAll
    static void close() {
        if (file != null) file.close();
        if (cuda != null) cuda.close();
    }

    static LoadOptions options(KvType type) { return new LoadOptions(2, type, 32); }

    /** A reference prompt and its continuation, 17 tokens. */
    static int[] tokens() {
        int[] t = Arrays.copyOf(reference.promptTokens(), ROWS);
        System.arraycopy(reference.tokens(), 0, t, reference.promptTokens().length, ROWS - reference.promptTokens().length);
        return t;
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = KvType.class, names = {"F16", "BF16"})
    void logitsAndGreedyTokensAgreeWithTheCpuBackendsSameCacheType(KvType type) {
        int[] t = tokens();
        try (LoadedModel gpu = cuda.load(file, options(type)); LoadedModel cpu = new CpuBackend().load(file, options(type))) {
            assertEquals(cpu.kvBytesPerPosition(), gpu.kvBytesPerPosition(), "K/V bytes per position");
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache gpuKv = gpu.createKvCache(tables); KvCache cpuKv = cpu.createKvCache(tables)) {
                assertEquals(cpuKv.bytes(), gpuKv.bytes(), "K/V cache bytes");
                int seq = tables.createSequence();
                int prompt = 9;
                tables.reserve(seq, prompt);
                Batch first = Batch.of(seq, 0, Arrays.copyOf(t, prompt), true);
                float worst = CudaVersusCpuTest.compare(ModelRuns.logits(gpu.forward(first, gpuKv)), ModelRuns.logits(cpu.forward(first, cpuKv)),
                        type + " prompt", TOLERANCE);
                for (int pos = prompt; pos < ROWS; pos++) {
                    tables.reserve(seq, pos + 1);
                    Batch step = Batch.of(seq, pos, new int[] {t[pos]}, false);
                    worst = Math.max(worst, CudaVersusCpuTest.compare(ModelRuns.logits(gpu.forward(step, gpuKv)),
                            ModelRuns.logits(cpu.forward(step, cpuKv)), type + " decode at " + pos, TOLERANCE));
                }
                System.out.printf("K/V %s: max |cuda-host - cpu| = %.3g of the row's max |logit| (tolerance %.0e)%n", type, worst, TOLERANCE);
            }
            int[] prompt = reference.promptTokens();
            assertArrayEquals(ModelRuns.greedy(cpu, prompt, 12), ModelRuns.greedy(gpu, prompt, 12), type + " greedy tokens");
        }
    }

    /** F32 is {@link CudaPassContractTest}'s case. */
    @ParameterizedTest(name = "{0}")
    @EnumSource(value = KvType.class, names = {"F16", "BF16"})
    void rowLogitsHaveTheSameBitsInPassesOf1_2_5_17Rows(KvType type) {
        try (LoadedModel gpu = cuda.load(file, options(type))) {
            float[][] one = inPassesOf(gpu, 1);
            for (int size : new int[] {2, 5, 17}) {
                CudaPassContractTest.assertSameBits(one, inPassesOf(gpu, size), type + ": passes of " + size + " rows vs 1");
            }
        }
    }

    static float[][] inPassesOf(LoadedModel model, int size) {
        int[] t = tokens();
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            float[][] out = new float[ROWS][];
            for (int start = 0; start < ROWS; start += size) {
                int n = Math.min(size, ROWS - start);
                tables.reserve(seq, start + n);
                float[][] part = ModelRuns.logits(model.forward(Batch.of(seq, start, Arrays.copyOfRange(t, start, start + n), true), kv));
                System.arraycopy(part, 0, out, start, n);
            }
            return out;
        }
    }

    @ParameterizedTest(name = "{0}")
    @EnumSource(value = KvType.class, names = {"F16", "BF16"})
    void aSixteenBitCacheHoldsHalfTheBytesOfF32(KvType type) {
        try (LoadedModel f32 = cuda.load(file, options(KvType.F32)); LoadedModel small = cuda.load(file, options(type))) {
            assertEquals(f32.kvBytesPerPosition(), 2 * small.kvBytesPerPosition());
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache a = f32.createKvCache(tables); KvCache b = small.createKvCache(tables)) {
                assertTrue(a.bytes() == 2 * b.bytes(), a.bytes() + " vs " + b.bytes());
            }
        }
    }
}
