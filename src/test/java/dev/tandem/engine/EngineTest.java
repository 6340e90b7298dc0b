package dev.tandem.engine;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.GgufCopy;
import dev.tandem.tokenizer.ChatMessage;
import dev.tandem.tokenizer.Tokenizer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** The embedding API on the bundled KJV Q8_0 pair. */
class EngineTest {
    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf");
    static final Path DRAFT = Path.of("test-models/kjv-draft-q8_0.gguf");
    static final String[] PROMPTS = {"In the beginning God created", "And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd"};

    static Engine engine;

    @BeforeAll
    static void load() {
        engine = Tandem.builder().model(MAIN).draft(DRAFT).threads(1).parallel(4).maxQueue(8).build();
    }

    @AfterAll
    static void close() {
        engine.close();
    }

    static GenerationRequest greedy(String prompt, int maxTokens) {
        return GenerationRequest.builder().prompt(prompt).maxTokens(maxTokens).build();
    }

    /** Plain greedy decoding written out against the runtime SPI, one sequence, stopping at end-of-generation. */
    static int[] referenceGreedy(String prompt, int count) {
        try (ModelFile file = ModelFile.open(MAIN); LoadedModel model = new CpuBackend().load(file, LoadOptions.defaults().withThreads(2))) {
            Tokenizer tok = engine.tokenizer();
            int[] p = tok.encode(prompt, true, true);
            PagedKvCache tables = new PagedKvCache(16, 64);
            try (KvCache kv = model.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, p.length);
                int next = model.forward(Batch.of(seq, 0, p, false), kv).argmax(0);
                List<Integer> out = new ArrayList<>();
                for (int i = 0; i < count && !tok.isEndOfGeneration(next); i++) {
                    out.add(next);
                    tables.reserve(seq, p.length + i + 1);
                    next = model.forward(Batch.of(seq, p.length + i, new int[] {next}, false), kv).argmax(0);
                }
                return out.stream().mapToInt(Integer::intValue).toArray();
            }
        }
    }

    @Test
    void modelsAreNamedAfterTheirFiles() {
        List<ModelInfo> models = engine.models();
        assertEquals("kjv-main-q8_0", models.get(0).id());
        assertEquals(ModelInfo.Role.MAIN, models.get(0).role());
        assertEquals("kjv-draft-q8_0", models.get(1).id());
        assertEquals(ModelInfo.Role.DRAFT, models.get(1).role());
    }

    @Test
    void greedyOutputIsPlainGreedyDecoding() {
        GenerationOutput out = engine.generateBlocking(greedy(PROMPTS[0], 24));
        int[] expected = referenceGreedy(PROMPTS[0], 24);
        assertArrayEquals(expected, out.tokenIds());
        java.io.ByteArrayOutputStream pieces = new java.io.ByteArrayOutputStream();   // a continuation keeps its leading space
        for (int t : expected) pieces.writeBytes(engine.tokenizer().tokenBytes(t, false));
        assertEquals(pieces.toString(java.nio.charset.StandardCharsets.UTF_8), out.text());
        assertEquals(expected.length == 24 ? FinishReason.LENGTH : FinishReason.STOP, out.finishReason());
        assertEquals(engine.tokenizer().encode(PROMPTS[0], true, true).length, out.stats().promptTokens());
        assertEquals(expected.length, out.stats().completionTokens());
    }

    @Test
    void concurrentGreedyRequestsEachEqualTheSameRequestAlone() throws Exception {
        GenerationOutput[] alone = new GenerationOutput[PROMPTS.length];
        for (int i = 0; i < PROMPTS.length; i++) alone[i] = engine.generateBlocking(greedy(PROMPTS[i], 40));
        long passesBefore = engine.stats().forwardPasses();
        List<Generation> together = new ArrayList<>();
        for (String p : PROMPTS) together.add(engine.generate(greedy(p, 40)));
        for (int i = 0; i < PROMPTS.length; i++) {
            GenerationOutput out = together.get(i).await();
            assertArrayEquals(alone[i].tokenIds(), out.tokenIds(), PROMPTS[i]);
            assertEquals(alone[i].text(), out.text());
        }
        long passes = engine.stats().forwardPasses() - passesBefore;
        int tokens = Arrays.stream(alone).mapToInt(o -> o.tokenIds().length).sum();
        assertTrue(passes < tokens, "sequences shared passes: " + passes + " passes for " + tokens + " tokens");
    }

    @Test
    void aStopStringEndsTheOutputBeforeIt() {
        GenerationOutput full = engine.generateBlocking(greedy(PROMPTS[1], 32));
        String stop = full.text().substring(10, 14);
        String before = full.text().substring(0, full.text().indexOf(stop));
        GenerationOutput stopped = engine.generateBlocking(GenerationRequest.builder().prompt(PROMPTS[1]).maxTokens(32).stop(stop).build());
        assertEquals(before, stopped.text());
        assertEquals(FinishReason.STOP, stopped.finishReason());
    }

    /** Collects a generation's events. */
    /** Subscribes, cancels the subscription once the first event has arrived, and returns the cancelled output. */
    static GenerationOutput cancelAfterFirstEvent(Generation g) throws Exception {
        Collector c = new Collector();
        g.subscribe(c);
        assertTrue(c.first.await(30, TimeUnit.SECONDS));
        c.subscription.cancel();
        GenerationOutput out = g.result().get(30, TimeUnit.SECONDS);
        assertEquals(FinishReason.CANCELLED, out.finishReason());
        return out;
    }

    static final class Collector implements Flow.Subscriber<GenerationEvent> {
        final List<GenerationEvent> events = new ArrayList<>();
        final CountDownLatch done = new CountDownLatch(1);
        final CountDownLatch first = new CountDownLatch(1);
        Flow.Subscription subscription;
        Throwable error;

        @Override public void onSubscribe(Flow.Subscription s) { subscription = s; s.request(Long.MAX_VALUE); }
        @Override public synchronized void onNext(GenerationEvent e) { events.add(e); first.countDown(); }
        @Override public void onError(Throwable t) { error = t; done.countDown(); }
        @Override public void onComplete() { done.countDown(); }

        synchronized String text() {
            StringBuilder b = new StringBuilder();
            for (GenerationEvent e : events) if (e instanceof GenerationEvent.Chunk c) b.append(c.text());
            return b.toString();
        }
    }

    @Test
    void theStreamCarriesTheSameTextAndEndsWithFinished() throws Exception {
        Generation g = engine.generate(greedy(PROMPTS[2], 20));
        Collector c = new Collector();
        g.subscribe(c);
        assertTrue(c.done.await(30, TimeUnit.SECONDS));
        assertNull(c.error);
        GenerationOutput out = g.result().get();
        assertEquals(out.text(), c.text());
        GenerationEvent last = c.events.getLast();
        assertInstanceOf(GenerationEvent.Finished.class, last);
        assertEquals(out.finishReason(), ((GenerationEvent.Finished) last).reason());
    }

    @Test
    void cancellingTheSubscriptionStopsTheGenerationAndFreesItsBlocks() throws Exception {
        long cancelledBefore = engine.stats().cancelled();
        GenerationOutput out = cancelAfterFirstEvent(engine.generate(GenerationRequest.builder().prompt(PROMPTS[3]).ignoreEndOfGeneration(true).build()));
        assertTrue(out.tokenIds().length < engine.contextLength() - 10);
        assertEquals(cancelledBefore + 1, engine.stats().cancelled());
        assertEquals(0, engine.stats().kvBlocksInUse());
    }

    @Test
    void aPassedDeadlineEndsTheGeneration() {
        GenerationOutput out = engine.generateBlocking(GenerationRequest.builder().prompt(PROMPTS[0]).ignoreEndOfGeneration(true)
                .deadline(Instant.now().minusSeconds(1)).build());
        assertEquals(FinishReason.DEADLINE, out.finishReason());
    }

    @Test
    void aPromptLongerThanTheContextIsRejectedWithBothNumbers() {
        String longPrompt = "and the LORD said ".repeat(400);
        int tokens = engine.tokenizer().encode(longPrompt, true, true).length;
        PromptTooLongException e = assertThrows(PromptTooLongException.class, () -> engine.generate(greedy(longPrompt, 4)));
        assertEquals(tokens, e.promptTokens());
        assertEquals(1024, e.contextLength());
        assertTrue(e.getMessage().contains(tokens + " tokens") && e.getMessage().contains("1024"), e.getMessage());
    }

    @Test
    void unknownModelsAndDraftsAreNamed() {
        UnknownModelException e = assertThrows(UnknownModelException.class,
                () -> engine.generate(GenerationRequest.builder().model("gpt-4").prompt("x").build()));
        assertTrue(e.getMessage().contains("gpt-4") && e.getMessage().contains("kjv-main-q8_0"), e.getMessage());
        UnknownModelException d = assertThrows(UnknownModelException.class,
                () -> engine.generate(GenerationRequest.builder().prompt("x").draft(DraftSettings.model("tiny")).build()));
        assertEquals("draft_model", d.param());
        InvalidRequestException self = assertThrows(InvalidRequestException.class,
                () -> engine.generate(GenerationRequest.builder().prompt("x").draft(DraftSettings.model("kjv-main-q8_0")).build()));
        assertFalse(self instanceof UnknownModelException, "the main model is known, it just cannot draft for itself");
        assertTrue(self.getMessage().contains("is the main model") && self.getMessage().contains("kjv-draft-q8_0"), self.getMessage());
        InvalidRequestException big = assertThrows(InvalidRequestException.class, () -> engine.generate(greedy("x", 5000)));
        assertEquals("max_tokens", big.param());
    }

    @Test
    void aFullQueueRejectsNewRequests() throws Exception {
        try (Engine small = Tandem.builder().model(MAIN).threads(1).parallel(1).maxQueue(1).build()) {
            GenerationRequest endless = GenerationRequest.builder().prompt(PROMPTS[0]).ignoreEndOfGeneration(true).build();
            Generation running = small.generate(endless);
            Collector c = new Collector();
            running.subscribe(c);
            assertTrue(c.first.await(30, TimeUnit.SECONDS));       // now it holds the only slot
            Generation queued = small.generate(endless);
            assertThrows(EngineOverloadedException.class, () -> small.generate(endless));
            assertEquals(1, small.stats().rejected());
            queued.cancel();
            running.cancel();
            assertEquals(FinishReason.CANCELLED, queued.await().finishReason());
            assertEquals(FinishReason.CANCELLED, running.await().finishReason());
        }
    }

    @Test
    void sampledOutputDependsOnlyOnTheSeed() {
        SamplingSettings s = SamplingSettings.defaults(42).withTemperature(1.0);
        GenerationRequest r = GenerationRequest.builder().prompt(PROMPTS[0]).maxTokens(16).sampling(s).build();
        List<CompletableFuture<GenerationOutput>> outs = new ArrayList<>();
        for (int i = 0; i < 3; i++) outs.add(engine.generate(r).result());
        int[] first = outs.get(0).join().tokenIds();
        for (var o : outs) assertArrayEquals(first, o.join().tokenIds());
    }

    @Test
    void chatMessagesGoThroughTheModelsTemplate() {
        List<ChatMessage> chat = List.of(ChatMessage.user("Who made the heaven?"));
        String rendered = engine.renderChat(chat);
        assertEquals("<|im_start|>user\nWho made the heaven?<|im_end|>\n<|im_start|>assistant\n", rendered);
        GenerationOutput viaChat = engine.generateBlocking(GenerationRequest.builder().messages(chat).maxTokens(8).build());
        GenerationOutput viaText = engine.generateBlocking(greedy(rendered, 8));
        assertArrayEquals(viaText.tokenIds(), viaChat.tokenIds());
    }

    @Test
    void aChatTemplateThatRefusesTheMessagesIsAnInvalidRequestOnMessages(@TempDir Path tmp) {
        Path refusing = GgufCopy.of(DRAFT, tmp.resolve("refusing.gguf"),
                w -> w.putString("tokenizer.chat_template", "{{ raise_exception('this model takes no system prompt') }}"));
        try (Engine e = Tandem.builder().model(refusing).threads(1).build()) {
            InvalidRequestException refused = assertThrows(InvalidRequestException.class,
                    () -> e.generate(GenerationRequest.builder().messages(ChatMessage.system("Be brief.")).maxTokens(4).build()));
            assertTrue(refused.getMessage().contains("this model takes no system prompt"), refused.getMessage());
            assertEquals("messages", refused.param());
            assertEquals("chat_template_error", refused.code());
        }
    }

    @Test
    void chatMessagesToAModelWithoutATemplateAreAnInvalidRequestOnMessages(@TempDir Path tmp) {
        Path plain = GgufCopy.of(DRAFT, tmp.resolve("plain.gguf"), w -> w.remove("tokenizer.chat_template"));
        try (Engine e = Tandem.builder().model(plain).threads(1).build()) {
            InvalidRequestException refused = assertThrows(InvalidRequestException.class,
                    () -> e.generate(GenerationRequest.builder().messages(ChatMessage.user("Hi")).maxTokens(4).build()));
            assertTrue(refused.getMessage().contains("has no chat template"), refused.getMessage());
            assertEquals("messages", refused.param());
            assertEquals("chat_template_error", refused.code());
        }
    }
}
