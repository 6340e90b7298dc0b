package dev.tandem.runtime.cuda;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.PagedKvCache;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CUDA graphs through the seam: the host driver records a capture's work instead of running it and replays it
 * with the arguments captured and the buffers' current contents, as cuGraphLaunch does; a model that replays
 * its decode steps gets the same bits as one that launches them directly.
 */
class CudaGraphTest {
    static final int STEPS = 20;  // the prompt plus 20 steps crosses a 16-position block: the block table grows

    @RegisterExtension
    static final CudaHostFixture HOST = new CudaHostFixture("kjv-draft-f32.gguf");
    static int[] prompt;

    @BeforeAll
    static void readPrompt() {
        prompt = HOST.references().getFirst().promptTokens();
    }

    static CudaModel model() {
        return HOST.model();
    }

    @Test
    void aCaptureRecordsWithoutRunningAndAReplayReadsTheBuffersCurrentContents() {
        GpuDriver driver = HOST.cuda().driver();
        try (GpuStream s = driver.createStream(); PinnedBuffer host = driver.allocatePinned(8 * 4);
             DeviceBuffer a = driver.allocate(8 * 4); DeviceBuffer bias = driver.allocate(8 * 4)) {
            for (int i = 0; i < 8; i++) host.segment().setAtIndex(ValueLayout.JAVA_FLOAT, i, 1f);
            driver.copyToDevice(bias, host, 0, s);
            driver.synchronize(s);
            GpuGraph graph = driver.capture(s, () -> {
                driver.copyToDevice(a, host, 0, s);
                driver.launch(Kernel.BIAS_ADD, LaunchGeometry.elementwise(8), s, a, bias, 8, 8);  // a = host + 1
                driver.copyToHost(host, 0, a, s);
            });
            driver.synchronize(s);
            assertEquals(1f, host.segment().getAtIndex(ValueLayout.JAVA_FLOAT, 0), "capturing ran nothing");
            for (int replay = 1; replay <= 3; replay++) {
                driver.launch(graph, s);
                driver.synchronize(s);
                for (int i = 0; i < 8; i++) assertEquals(1f + replay, host.segment().getAtIndex(ValueLayout.JAVA_FLOAT, i), "replay " + replay);
            }
            graph.close();
        }
    }

    /** Logits of the prompt's last row and of {@link #STEPS} greedy decode steps. */
    static float[][] decode(boolean graphs) {
        model().useGraphs(graphs);
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = model().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, prompt.length);
            float[][] out = new float[STEPS + 1][];
            var r = model().forward(Batch.of(seq, 0, prompt, false), kv);
            out[0] = ModelRuns.logits(r)[0];
            for (int i = 0; i < STEPS; i++) {
                int pos = prompt.length + i;
                tables.reserve(seq, pos + 1);
                r = model().forward(Batch.of(seq, pos, new int[] {r.argmax(0)}, false), kv);
                out[i + 1] = ModelRuns.logits(r)[0];
            }
            return out;
        } finally {
            model().useGraphs(false);
        }
    }

    @Test
    void replayedDecodeStepsGiveTheBitsOfDirectOnes() {
        float[][] direct = decode(false);
        long[] before = model().graphCounts();
        float[][] replayed = decode(true);
        long[] after = model().graphCounts();
        long captures = after[0] - before[0], launches = after[1] - before[1];
        assertTrue(captures >= 1 && launches > captures, captures + " captures, " + launches + " graph launches: decode steps were replayed");
        CudaPassContractTest.assertSameBits(direct, replayed, "graph replay vs direct launches");
        System.out.printf("CUDA graphs on cuda-host: %d captures for %d graph launches, same bits%n", captures, launches);
    }

    @Test
    void aReplayedVerificationGivesTheSameVerdict() {
        int[] greedy = ModelRuns.greedy(model(), prompt, 4);
        int[] wrongThird = {greedy[0], greedy[1], greedy[2], (greedy[3] + 1) % model().config().vocabularySize()};
        CudaModel.GreedyVerdict direct = verify(wrongThird, false);
        model().useGraphs(true);
        try {
            verify(greedy, true);  // captures this shape
            CudaModel.GreedyVerdict replayed = verify(wrongThird, true);
            assertEquals(direct.accepted(), replayed.accepted());
            assertEquals(direct.next(), replayed.next());
            assertArrayEquals(direct.pass().argmaxIds(), replayed.pass().argmaxIds());
            assertEquals(2, replayed.accepted());
        } finally {
            model().useGraphs(false);
        }
    }

    static CudaModel.GreedyVerdict verify(int[] rows, boolean graphs) {
        PagedKvCache tables = new PagedKvCache(16, 4);
        try (KvCache kv = model().createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, prompt.length + rows.length);
            model().forward(Batch.of(seq, 0, prompt, false), kv);
            return model().verifyGreedy(Batch.of(seq, prompt.length, rows, true), kv);
        }
    }
}
