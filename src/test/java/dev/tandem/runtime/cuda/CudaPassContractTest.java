package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.Arrays;
import java.util.concurrent.CompletableFuture;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * What the speculative decoder relies on, on the CUDA backend (host emulation, KJV draft model for speed):
 * a row's logits have the same bits whatever the other rows of its pass; truncating the paged cache and
 * re-running positions gives the same bits again; passes of two models run on their own streams.
 */
class CudaPassContractTest {
    static final int ROWS = 17;

    @RegisterExtension
    static final CudaHostFixture HOST = new CudaHostFixture("kjv-draft-f32.gguf");
    /** 17 tokens: a reference prompt and its continuation. */
    static int[] tokens;

    @BeforeAll
    static void readTokens() {
        ReferenceRecords.Generation g = HOST.references().getFirst();
        tokens = new int[ROWS];
        System.arraycopy(g.promptTokens(), 0, tokens, 0, g.promptTokens().length);
        System.arraycopy(g.tokens(), 0, tokens, g.promptTokens().length, ROWS - g.promptTokens().length);
    }

    static LoadedModel draft() {
        return HOST.model();
    }

    /** Logits of every row when the tokens are run in passes of {@code size} rows. */
    static float[][] inPassesOf(int size) {
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = draft().createKvCache(tables)) {
            int seq = tables.createSequence();
            float[][] out = new float[ROWS][];
            for (int start = 0; start < ROWS; start += size) {
                int n = Math.min(size, ROWS - start);
                tables.reserve(seq, start + n);
                float[][] part = ModelRuns.logits(draft().forward(Batch.of(seq, start, Arrays.copyOfRange(tokens, start, start + n), true), kv));
                System.arraycopy(part, 0, out, start, n);
            }
            return out;
        }
    }

    static void assertSameBits(float[][] expected, float[][] actual, String what) {
        for (int r = 0; r < expected.length; r++) {
            for (int t = 0; t < expected[r].length; t++) {
                if (Float.floatToRawIntBits(expected[r][t]) != Float.floatToRawIntBits(actual[r][t])) {
                    throw new AssertionError(what + ": row " + r + " token " + t + ": " + expected[r][t] + " vs " + actual[r][t]);
                }
            }
        }
    }

    @Test
    void rowLogitsHaveTheSameBitsInPassesOf1_2_5_17Rows() {
        float[][] one = inPassesOf(1);
        for (int size : new int[] {2, 5, 17}) assertSameBits(one, inPassesOf(size), "passes of " + size + " rows vs 1");
    }

    @Test
    void twoSequencesInOnePassGetTheirOwnLogits() {
        float[][] alone = inPassesOf(ROWS);
        // Rows 0..8 of sequence A and rows 0..7 of sequence B (same tokens), interleaved in blocks of a shared pool.
        PagedKvCache tables = new PagedKvCache(4, 16);
        try (KvCache kv = draft().createKvCache(tables)) {
            int a = tables.createSequence(), b = tables.createSequence();
            tables.reserve(b, 8);
            tables.reserve(a, 9);
            int[] tok = new int[17], pos = new int[17], seq = new int[17], rows = new int[17];
            for (int i = 0; i < 17; i++) {
                boolean first = i < 9;
                tok[i] = tokens[first ? i : i - 9];
                pos[i] = first ? i : i - 9;
                seq[i] = first ? a : b;
                rows[i] = i;
            }
            float[][] mixed = ModelRuns.logits(draft().forward(new Batch(tok, pos, seq, rows), kv));
            assertSameBits(Arrays.copyOfRange(alone, 0, 9), Arrays.copyOfRange(mixed, 0, 9), "sequence A");
            assertSameBits(Arrays.copyOfRange(alone, 0, 8), Arrays.copyOfRange(mixed, 9, 17), "sequence B");
        }
    }

    @Test
    void truncatingAndRerunningPositionsReproducesTheLogits() {
        PagedKvCache tables = new PagedKvCache(4, 8);  // small blocks: the rollback frees and reuses blocks
        try (KvCache kv = draft().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, 6);
            draft().forward(Batch.of(seq, 0, Arrays.copyOf(tokens, 6), false), kv);
            tables.reserve(seq, 11);
            float[][] accepted = ModelRuns.logits(draft().forward(Batch.of(seq, 6, Arrays.copyOfRange(tokens, 6, 11), true), kv));
            // A rejected draft: other tokens at positions 6..10, then rollback to 6.
            tables.truncate(seq, 6);
            tables.reserve(seq, 11);
            draft().forward(Batch.of(seq, 6, new int[] {5, 6, 7, 8, 9}, true), kv);
            tables.truncate(seq, 6);
            tables.reserve(seq, 11);
            float[][] again = ModelRuns.logits(draft().forward(Batch.of(seq, 6, Arrays.copyOfRange(tokens, 6, 11), true), kv));
            assertSameBits(accepted, again, "after rollback");
        }
    }

    @Test
    void argmaxFromTheDeviceIsTheArgmaxOfTheLogits() {
        PagedKvCache tables = new PagedKvCache(16, 2);
        try (KvCache kv = draft().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, 8);
            ForwardResult r = draft().forward(Batch.of(seq, 0, Arrays.copyOf(tokens, 8), true), kv);
            int[] device = new int[r.rows()];
            for (int i = 0; i < r.rows(); i++) device[i] = r.argmax(i);
            float[][] logits = ModelRuns.logits(r);
            for (int i = 0; i < r.rows(); i++) {
                int best = 0;
                for (int t = 1; t < logits[i].length; t++) if (logits[i][t] > logits[i][best]) best = t;
                assertEquals(best, device[i], "row " + i);
            }
        }
    }

    @Test
    void draftAndMainPassesRunConcurrentlyOnTheirOwnStreams() {
        try (ModelFile mainFile = ModelFile.open(SharedData.kjv("kjv-main-f32.gguf"));
             LoadedModel main = HOST.cuda().load(mainFile, LoadOptions.defaults())) {
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache mainKv = main.createKvCache(tables); KvCache draftKv = draft().createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, 5);
                Batch batch = Batch.of(seq, 0, Arrays.copyOf(tokens, 5), true);
                CompletableFuture<float[][]> d = draft().forwardAsync(batch, draftKv).thenApply(ModelRuns::logits).toCompletableFuture();
                CompletableFuture<float[][]> m = main.forwardAsync(batch, mainKv).thenApply(ModelRuns::logits).toCompletableFuture();
                float[][] draftLogits = d.join(), mainLogits = m.join();
                assertSameBits(ModelRuns.logits(draft().forward(batch, draftKv)), draftLogits, "draft, async vs sync");
                assertSameBits(ModelRuns.logits(main.forward(batch, mainKv)), mainLogits, "main, async vs sync");
            }
        }
    }

    @Test
    void logitsOfAnEarlierPassAreRefusedOnceTheNextPassRan() {
        PagedKvCache tables = new PagedKvCache(16, 2);
        try (KvCache kv = draft().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, 2);
            ForwardResult first = draft().forward(Batch.of(seq, 0, new int[] {tokens[0]}, false), kv);
            draft().forward(Batch.of(seq, 1, new int[] {tokens[1]}, false), kv);
            assertDoesNotThrow(() -> first.argmax(0), "ids come back with their pass and stay");
            assertThrows(IllegalStateException.class, () -> first.logit(0, 0));
        }
    }

    @Test
    void badRowsAreRefusedBeforeAnythingRuns() {
        PagedKvCache tables = new PagedKvCache(16, 2);
        try (KvCache kv = draft().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, 1);
            var e = assertThrows(IllegalArgumentException.class, () -> draft().forward(Batch.of(seq, 0, new int[] {1 << 20}, false), kv));
            assertTrue(e.getMessage().contains("outside the vocabulary"), e.getMessage());
            assertThrows(IllegalStateException.class, () -> draft().forward(Batch.of(seq, 5, new int[] {1}, false), kv));
        }
    }
}
