package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The bitwise contract on the CPU: the logits of a position are the same bits whether it runs alone or in a
 * pass of 2, 5 or 17 rows, and after a rollback (truncate) re-running positions reproduces them.
 */
class CpuBatchInvarianceTest {
    static final int[] PROMPT = {1, 302, 361, 480, 295, 606, 4049, 303, 263, 347, 396, 327, 691, 4049, 821, 4049, 301, 400, 12, 99, 7};

    /** Logits of every position of PROMPT, run in passes of {@code rows} rows. */
    static float[][] logits(LoadedModel model, int rows) {
        PagedKvCache tables = new PagedKvCache(16, 4);
        int vocab = model.config().vocabularySize();
        float[][] out = new float[PROMPT.length][vocab];
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            for (int start = 0; start < PROMPT.length; start += rows) {
                int[] chunk = Arrays.copyOfRange(PROMPT, start, Math.min(PROMPT.length, start + rows));
                tables.reserve(seq, start + chunk.length);
                ForwardResult r = model.forward(Batch.of(seq, start, chunk, true), kv);
                for (int i = 0; i < chunk.length; i++) r.copyLogits(i, out[start + i]);
            }
        }
        return out;
    }

    @ParameterizedTest
    @ValueSource(strings = {"kjv-main-q8_0.gguf", "kjv-main-f32.gguf"})
    void logitsOfARowDoNotDependOnTheRowsBesideIt(String file) {
        try (ModelFile f = ModelFile.open(SharedData.kjv(file));
             LoadedModel model = new CpuBackend().load(f, new LoadOptions(2, KvType.F32, 8))) {
            float[][] one = logits(model, 1);
            for (int rows : new int[] {2, 5, 17}) {
                float[][] many = logits(model, rows);
                for (int p = 0; p < PROMPT.length; p++) {
                    assertArrayEquals(one[p], many[p], 0f, file + ": position " + p + " differs with " + rows + " rows per pass");
                    for (int t = 0; t < one[p].length; t++) {
                        assertEquals(Float.floatToRawIntBits(one[p][t]), Float.floatToRawIntBits(many[p][t]));
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"kjv-main-q8_0.gguf"})
    void rollbackThenRerunReproducesTheLogits(String file) {
        try (ModelFile f = ModelFile.open(SharedData.kjv(file));
             LoadedModel model = new CpuBackend().load(f, new LoadOptions(2, KvType.F32, 32))) {
            PagedKvCache tables = new PagedKvCache(4, 16);
            try (KvCache kv = model.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, 12);
                int[] first = Arrays.copyOf(PROMPT, 12);
                float[] before = new float[4096];
                model.forward(Batch.of(seq, 0, first, true), kv).copyLogits(11, before);
                // Run some other tokens at positions 8..11 (a rejected draft), then roll back to 8.
                model.forward(Batch.of(seq, 8, new int[] {5, 6, 7, 8}, true), kv);
                tables.truncate(seq, 8);
                assertEquals(8, tables.length(seq));
                tables.reserve(seq, 12);
                float[] after = new float[4096];
                model.forward(Batch.of(seq, 8, Arrays.copyOfRange(PROMPT, 8, 12), true), kv).copyLogits(3, after);
                assertArrayEquals(before, after, 0f);
            }
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"f16", "bf16"})
    void sixteenBitKvCachesGiveCloseLogits(String type) {
        try (ModelFile f = ModelFile.open(SharedData.kjv("kjv-main-f32.gguf"));
             LoadedModel f32 = new CpuBackend().load(f, new LoadOptions(2, KvType.F32, 32));
             LoadedModel half = new CpuBackend().load(f, new LoadOptions(2, KvType.parse(type), 32))) {
            float[][] a = logits(f32, 21), b = logits(half, 21);
            double maxDiff = 0;
            for (int p = 0; p < PROMPT.length; p++) for (int t = 0; t < a[p].length; t++) maxDiff = Math.max(maxDiff, Math.abs(a[p][t] - b[p][t]));
            System.out.printf("K/V %s vs f32: max |logit difference| %.4f%n", type, maxDiff);
            // BF16 keeps 8 mantissa bits (relative error 2^-9 per value); logits here span about +-20.
            assertEquals(0, maxDiff, type.equals("f16") ? 0.05 : 0.5);
        }
    }

    /** Rows of two sequences in one pass give the same bits as each sequence run alone. */
    @ParameterizedTest
    @ValueSource(strings = {"kjv-main-q8_0.gguf"})
    void sequencesSharingAPassDoNotChangeEachOther(String file) {
        try (ModelFile f = ModelFile.open(SharedData.kjv(file));
             LoadedModel model = new CpuBackend().load(f, new LoadOptions(2, KvType.F32, 32))) {
            int[] a = Arrays.copyOf(PROMPT, 9), b = Arrays.copyOfRange(PROMPT, 9, 21);
            float[] aloneA = new float[4096], aloneB = new float[4096], togetherA = new float[4096], togetherB = new float[4096];
            PagedKvCache tables = new PagedKvCache(16, 8);
            try (KvCache kv = model.createKvCache(tables)) {
                int sa = tables.createSequence(), sb = tables.createSequence();
                tables.reserve(sa, a.length + 1);
                tables.reserve(sb, b.length + 1);
                model.forward(Batch.of(sa, 0, a, false), kv);
                model.forward(Batch.of(sb, 0, b, false), kv);
                model.forward(Batch.of(sa, a.length, new int[] {42}, false), kv).copyLogits(0, aloneA);
                model.forward(Batch.of(sb, b.length, new int[] {43}, false), kv).copyLogits(0, aloneB);
                var r = model.forward(new Batch(new int[] {42, 43}, new int[] {a.length, b.length}, new int[] {sa, sb}, new int[] {0, 1}), kv);
                r.copyLogits(0, togetherA);
                r.copyLogits(1, togetherB);
            }
            assertArrayEquals(aloneA, togetherA, 0f);
            assertArrayEquals(aloneB, togetherB, 0f);
        }
    }

    /** The thread count never changes a result. */
    @ParameterizedTest
    @ValueSource(strings = {"kjv-main-q8_0.gguf"})
    void oneThreadGivesTheBitsOfTwo(String file) {
        try (ModelFile f = ModelFile.open(SharedData.kjv(file));
             LoadedModel one = new CpuBackend().load(f, new LoadOptions(1, KvType.F32, 8));
             LoadedModel two = new CpuBackend().load(f, new LoadOptions(2, KvType.F32, 8))) {
            for (int rows : new int[] {1, 5}) {
                float[][] a = logits(one, rows), b = logits(two, rows);
                for (int p = 0; p < PROMPT.length; p++) assertArrayEquals(a[p], b[p], 0f, "position " + p + ", " + rows + " rows per pass");
            }
        }
    }
}
