package dev.tandem.engine;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.HostGpuDriver;
import dev.tandem.runtime.cuda.HostKernels;
import dev.tandem.testing.ForwardingModel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Prefix caching in the engine, on the bundled KJV pair: a prompt that starts with cached blocks prefills only the
 * rest, a conversation's next turn finds its whole history, concurrent requests with one system prompt hold its
 * blocks once, and greedy outputs are those of an engine without the cache, token for token.
 */
class PrefixCacheEngineTest {
    static final String HISTORY = "In the beginning God created the heaven and the earth. And the earth was without form, and void; "
            + "and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, "
            + "Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness.";
    static final int BLOCK = Engine.BLOCK_SIZE;

    static Engine cached, uncached;

    @BeforeAll
    static void load() {
        cached = Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).threads(1).parallel(4).contextLength(512).build();
        uncached = Tandem.builder().model(EngineTest.MAIN).draft(EngineTest.DRAFT).threads(1).parallel(4).contextLength(512)
                .prefixCache(false).build();
    }

    @AfterAll
    static void close() {
        if (cached != null) cached.close();
        if (uncached != null) uncached.close();
    }

    static int[] tokens(Engine e, String text) { return e.tokenizer().encode(text, true, true); }

    static int[] concat(int[]... parts) {
        int[] out = new int[Arrays.stream(parts).mapToInt(p -> p.length).sum()];
        int n = 0;
        for (int[] p : parts) {
            System.arraycopy(p, 0, out, n, p.length);
            n += p.length;
        }
        return out;
    }

    static GenerationRequest greedy(int[] prompt, int maxTokens, DraftSettings draft) {
        return GenerationRequest.builder().promptTokens(prompt).maxTokens(maxTokens).draft(draft).build();
    }

    static final List<DraftSettings> DRAFTS = List.of(DraftSettings.off(), DraftSettings.ngram().withLimits(4, 0, 0),
            DraftSettings.model("kjv-draft-q8_0").withLimits(4, 0, 0));

    /** How many leading tokens {@code a} and {@code b} have in common. */
    static int commonPrefix(int[] a, int[] b) {
        int n = 0;
        while (n < a.length && n < b.length && a[n] == b[n]) n++;
        return n;
    }

    @Test
    void aSecondTurnPrefillsOnlyItsNewTokensAndGivesTheOutputOfAnEngineWithoutTheCache() {
        for (DraftSettings draft : DRAFTS) {
            String turn = " [" + draft.mode() + "] And the evening and the morning were the first day.";
            int[] first = tokens(cached, HISTORY + turn);
            GenerationOutput one = cached.generateBlocking(greedy(first, 24, draft));
            assertArrayEquals(uncached.generateBlocking(greedy(first, 24, draft)).tokenIds(), one.tokenIds(), draft.mode() + " turn 1");

            int[] next = cached.tokenizer().encode(" And God called the firmament Heaven.", false, false);
            int[] second = concat(first, one.tokenIds(), next);
            long hitsBefore = cached.stats().prefixCacheHitTokens();
            GenerationOutput two = cached.generateBlocking(greedy(second, 24, draft));
            // The first turn left its prompt and all it generated but the last token (never run) in the cache; with a
            // draft model, blocks count for it only as far as the draft ran, which may be a block less.
            int expected = (first.length + one.tokenIds().length - 1) / BLOCK * BLOCK;
            int hit = two.stats().cachedPromptTokens(), slack = draft.mode() == DraftSettings.Mode.MODEL ? BLOCK : 0;
            assertTrue(hit <= expected && hit >= expected - slack, draft.mode() + ": expected " + expected + ", " + two.stats());
            assertEquals(hit, cached.stats().prefixCacheHitTokens() - hitsBefore);
            assertTrue(second.length - hit < next.length + 1 + BLOCK + slack, "prefilled " + (second.length - hit) + " of " + second.length);
            GenerationOutput reference = uncached.generateBlocking(greedy(second, 24, draft));
            assertArrayEquals(reference.tokenIds(), two.tokenIds(), draft.mode() + " turn 2");
            assertEquals(0, reference.stats().cachedPromptTokens());
            if (draft.mode() != DraftSettings.Mode.OFF) assertTrue(two.stats().draftTokens() > 0, two.stats().toString());
        }
        assertEquals(0, cached.stats().kvBlocksInUse());
        assertTrue(cached.stats().kvBlocksCached() > 0, cached.stats().toString());
        assertEquals(0, uncached.stats().kvBlocksCached());
    }

    @Test
    void aSpeculativeRequestDoesNotShareBlocksItsDraftModelNeverWrote() {
        int[] prompt = tokens(cached, "Of the draft. " + HISTORY);
        DraftSettings model = DRAFTS.get(2);
        cached.generateBlocking(greedy(prompt, 4, DraftSettings.off()));
        GenerationOutput spec = cached.generateBlocking(greedy(prompt, 16, model));
        assertEquals(0, spec.stats().cachedPromptTokens(), "the plain request's blocks hold no draft K/V");
        assertArrayEquals(uncached.generateBlocking(greedy(prompt, 16, model)).tokenIds(), spec.tokenIds());
        GenerationOutput again = cached.generateBlocking(greedy(prompt, 16, model));
        assertEquals((prompt.length - 1) / BLOCK * BLOCK, again.stats().cachedPromptTokens(), "the prompt's blocks, written by both");
        assertArrayEquals(spec.tokenIds(), again.tokenIds());
        GenerationOutput plain = cached.generateBlocking(greedy(prompt, 16, DraftSettings.off()));
        assertTrue(plain.stats().cachedPromptTokens() > 0, "blocks both models wrote serve a plain request too");
    }

    @Test
    void aCancelledRequestLeavesNoBlockHeldAndItsSharedPrefixCached() throws Exception {
        int[] prompt = tokens(cached, "Of the cancelled. " + HISTORY);
        cached.generateBlocking(greedy(prompt, 2, DraftSettings.off()));
        GenerationOutput out = EngineTest.cancelAfterFirstEvent(cached.generate(GenerationRequest.builder().promptTokens(prompt).ignoreEndOfGeneration(true).build()));
        assertTrue(out.stats().cachedPromptTokens() > 0);
        assertEquals(0, cached.stats().kvBlocksInUse());
        assertEquals((prompt.length - 1) / BLOCK * BLOCK, cached.generateBlocking(greedy(prompt, 2, DraftSettings.off())).stats().cachedPromptTokens());
    }

    @Test
    void aFullPoolEvictsCachedPrefixesNobodyHoldsInsteadOfMakingRequestsWait() throws Exception {
        // A pool of exactly one request: 64 positions, 4 blocks.
        try (Engine tight = Tandem.builder().model(EngineTest.MAIN).threads(1).parallel(1).contextLength(64).build()) {
            assertEquals(4, tight.stats().kvBlocksTotal());
            int[] p1 = Arrays.copyOf(tokens(tight, "Of the full pool. " + HISTORY), 40), p2 = Arrays.copyOf(tokens(tight, "Of another. " + HISTORY), 40);
            GenerationOutput one = tight.generate(greedy(p1, 20, DraftSettings.off())).result().get(60, TimeUnit.SECONDS);
            assertTrue(tight.stats().kvBlocksCached() >= 2, tight.stats().toString());
            GenerationOutput two = tight.generate(greedy(p2, 20, DraftSettings.off())).result().get(60, TimeUnit.SECONDS);
            assertEquals(0, two.stats().cachedPromptTokens());
            GenerationOutput twoAgain = tight.generate(greedy(p2, 20, DraftSettings.off())).result().get(60, TimeUnit.SECONDS);
            assertEquals(32, twoAgain.stats().cachedPromptTokens(), "p2's blocks, the most recently used, were kept");
            GenerationOutput oneAgain = tight.generate(greedy(p1, 20, DraftSettings.off())).result().get(60, TimeUnit.SECONDS);
            assertEquals(0, oneAgain.stats().cachedPromptTokens(), "p1's blocks were evicted for p2");
            assertArrayEquals(uncached.generateBlocking(greedy(p1, 20, DraftSettings.off())).tokenIds(), one.tokenIds());
            assertArrayEquals(one.tokenIds(), oneAgain.tokenIds());
            assertArrayEquals(uncached.generateBlocking(greedy(p2, 20, DraftSettings.off())).tokenIds(), twoAgain.tokenIds());
            assertArrayEquals(two.tokenIds(), twoAgain.tokenIds());
            assertEquals(0, tight.stats().kvBlocksInUse());
        }
    }

    /**
     * The CPU backend, holding the main model's first pass (the first request's prefill) until {@link #release}, and
     * noting the engine's blocks-in-use gauge at every main-model pass.
     */
    static final class HeldBackend implements Backend {
        final CpuBackend cpu = new CpuBackend();
        final CountDownLatch release = new CountDownLatch(1);
        final AtomicInteger peakBlocksInUse = new AtomicInteger();
        volatile Engine engine;
        private volatile boolean mainLoaded;

        @Override public String name() { return "cpu"; }

        @Override
        public LoadedModel load(ModelFile file, LoadOptions options) {
            LoadedModel model = cpu.load(file, options);
            if (mainLoaded) return model;
            mainLoaded = true;
            return new ForwardingModel(model) {
                @Override
                public ForwardResult forward(Batch batch, KvCache kv) {
                    try {
                        assertTrue(release.await(60, TimeUnit.SECONDS), "the test never released the first pass");
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                    Engine e = engine;
                    if (e != null) peakBlocksInUse.accumulateAndGet(e.stats().kvBlocksInUse(), Math::max);
                    return target.forward(batch, kv);
                }

                @Override public void close() { target.close(); }
            };
        }

        @Override public void close() { cpu.close(); }
    }

    /** 32 requests with one long system prompt, all in the batch at once (the first one's prefill is held until all are queued). */
    static Run thirtyTwo(boolean prefixCache, List<int[]> prompts) throws Exception {
        HeldBackend backend = new HeldBackend();
        try (Engine e = Tandem.builder().model(EngineTest.MAIN).backend(backend).threads(1).parallel(32).maxQueue(32)
                .contextLength(256).prefixCache(prefixCache).build()) {
            backend.engine = e;
            List<Generation> running = new ArrayList<>();
            for (int[] p : prompts) running.add(e.generate(GenerationRequest.builder().promptTokens(p).maxTokens(6).ignoreEndOfGeneration(true).build()));
            backend.release.countDown();
            List<int[]> outputs = new ArrayList<>();
            for (Generation g : running) outputs.add(g.result().get(120, TimeUnit.SECONDS).tokenIds());
            return new Run(outputs, backend.peakBlocksInUse.get(), e.stats());
        } finally {
            backend.close();
        }
    }

    record Run(List<int[]> outputs, int peakBlocksInUse, EngineStats after) {}

    @Test
    void thirtyTwoRequestsSharingASystemPromptHoldItsBlocksOnceAndEachGivesItsSoloOutput() throws Exception {
        int[] system = tokens(uncached, HISTORY);
        List<int[]> prompts = new ArrayList<>();
        for (int i = 0; i < 32; i++) prompts.add(concat(system, uncached.tokenizer().encode(" Question " + (i + 1) + ":", false, false)));
        Run shared = thirtyTwo(true, prompts), apart = thirtyTwo(false, prompts);
        for (int i = 0; i < prompts.size(); i++) {
            int[] solo = uncached.generateBlocking(GenerationRequest.builder().promptTokens(prompts.get(i)).maxTokens(6).ignoreEndOfGeneration(true).build()).tokenIds();
            assertArrayEquals(solo, shared.outputs().get(i), "request " + i + " with sharing");
            assertArrayEquals(solo, apart.outputs().get(i), "request " + i + " without");
        }
        int systemBlocks = system.length / BLOCK;
        // Each request shares the whole blocks it has in common with an earlier one (all were admitted, and had
        // published their prompts, before any ended): at least the system prompt's.
        long expectedHits = 0;
        for (int i = 1; i < prompts.size(); i++) {
            int common = 0;
            for (int j = 0; j < i; j++) common = Math.max(common, commonPrefix(prompts.get(i), prompts.get(j)));
            expectedHits += Math.min(common, prompts.get(i).length - 1) / BLOCK * BLOCK;
        }
        assertTrue(expectedHits >= 31L * systemBlocks * BLOCK);
        assertEquals(expectedHits, shared.after().prefixCacheHitTokens(), "every request after the first shares the system prompt");
        assertEquals(0, apart.after().prefixCacheHitTokens());
        System.out.printf("32 requests, system prompt of %d tokens (%d blocks): peak K/V blocks in use %d shared, %d apart%n",
                system.length, systemBlocks, shared.peakBlocksInUse(), apart.peakBlocksInUse());
        // Apart, each of the 32 holds the system prompt's blocks; shared, they are held once.
        assertTrue(apart.peakBlocksInUse() >= 32 * systemBlocks, "apart: " + apart.peakBlocksInUse());
        assertTrue(shared.peakBlocksInUse() <= apart.peakBlocksInUse() - 31 * systemBlocks,
                "shared " + shared.peakBlocksInUse() + ", apart " + apart.peakBlocksInUse() + " blocks in use at the peak");
        assertEquals(0, shared.after().kvBlocksInUse(), "no block held afterwards");
        assertEquals(0, apart.after().kvBlocksInUse());
        assertTrue(shared.after().kvBlocksCached() >= systemBlocks, "the system prompt stays cached: " + shared.after());
    }

    /** One engine on the host emulation (two would double its slow weight preparation): a cold run, then a warm one. */
    @Test
    void onTheCudaHostBackendTooACachedPrefixGivesTheTokensOfAColdPrefill() {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        int[] prompt = tokens(uncached, "In the beginning God created the heaven and the earth. And the earth was without form, and void;");
        try (CudaBackend cuda = new CudaBackend(new HostGpuDriver());
             Engine on = Tandem.builder().model(EngineTest.MAIN).backend(cuda).parallel(1).contextLength(128).build()) {
            GenerationOutput cold = on.generateBlocking(greedy(prompt, 4, DraftSettings.off()));
            assertEquals(0, cold.stats().cachedPromptTokens());
            GenerationOutput warm = on.generateBlocking(greedy(prompt, 4, DraftSettings.off()));
            assertEquals((prompt.length - 1) / BLOCK * BLOCK, warm.stats().cachedPromptTokens());
            assertTrue(warm.stats().cachedPromptTokens() > 0);
            assertArrayEquals(cold.tokenIds(), warm.tokenIds());
        }
    }
}
