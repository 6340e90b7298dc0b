package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GatedBackend;
import dev.tandem.engine.Tandem;
import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.HostKernels;
import org.junit.jupiter.api.Test;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Issue 18 through {@code tandem serve}'s HTTP API on the CUDA backend's host emulation: eight concurrent greedy
 * speculative requests (draft model, draft-max 4) are decoded as one batch — the draft model drafting for all of
 * them together, ahead of each verification, as the engine does on CUDA by default — and each gets exactly the text
 * it gets alone. {@code /metrics} shows the batching: the draft model's passes for the eight together are well
 * under half of theirs one by one, and at most 2 x draft-max + 1 per verification pass (a guess of the main model's
 * token, then the next draft). The stream/event order of those passes is CudaBatchOverlapTest's business.
 */
class CudaHostBatchServerTest {
    static final String DRAFT_ID = "kjv-draft-q8_0", MAIN_ID = "kjv-main-q8_0";
    static final int DRAFT_MAX = 4;
    static final String[] PROMPTS = {
            "In the beginning God created", "And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd",
            "And it came to pass", "Thus saith the LORD", "Now the serpent was", "And God said, Let there be"};

    static String body(String prompt) {
        return "{\"prompt\":" + JSON.getNodeFactory().textNode(prompt) + ",\"temperature\":0,\"max_tokens\":8,\"ignore_eos\":true"
                + ",\"draft_model\":\"" + DRAFT_ID + "\",\"speculative\":{\"n_max\":" + DRAFT_MAX + ",\"p_min\":0}}";
    }

    static double passes(OpenAiServer server, String model) throws Exception {
        return Scrape.of(server).get("tandem_forward_passes_total{model=\"" + model + "\"}");
    }

    static JsonNode ok(HttpResponse<String> r) throws Exception {
        assertEquals(200, r.statusCode(), r.body());
        return json(r);
    }

    @Test
    void eightConcurrentSpeculativeRequestsDraftTogetherAndEachGetsItsTextAlone() throws Exception {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        try (GatedBackend cuda = new GatedBackend(CudaBackend.onHost());
             Engine engine = Tandem.builder().model(MAIN).draft(DRAFT).backend(cuda).threads(1)
                     .parallel(PROMPTS.length).maxQueue(PROMPTS.length).prefixCache(false).build();
             OpenAiServer server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withPort(0)).start()) {
            assertEquals("cuda-host", engine.backend().name());
            List<String> alone = new ArrayList<>();
            double draftBefore = passes(server, DRAFT_ID), mainBefore = passes(server, MAIN_ID);
            for (String p : PROMPTS) {
                JsonNode r = ok(post(server, "/v1/completions", body(p)));
                assertTrue(r.get("stats").get("total_draft_tokens_count").asLong() > 0, r.toString());
                alone.add(r.get("choices").get(0).get("text").asText());
            }
            double draftAlone = passes(server, DRAFT_ID) - draftBefore, mainAlone = passes(server, MAIN_ID) - mainBefore;

            draftBefore = passes(server, DRAFT_ID);
            mainBefore = passes(server, MAIN_ID);
            List<CompletableFuture<HttpResponse<String>>> together = new ArrayList<>();
            cuda.hold(0);                   // no pass runs until all eight are in the engine, so they are admitted together
            try {
                for (String p : PROMPTS) {
                    HttpRequest request = HttpRequest.newBuilder(uri(server, "/v1/completions"))
                            .POST(HttpRequest.BodyPublishers.ofString(body(p))).header("Content-Type", "application/json").build();
                    together.add(HTTP.sendAsync(request, HttpResponse.BodyHandlers.ofString()));
                }
                for (int waited = 0; inEngine(engine) < PROMPTS.length && waited < 60_000; waited += 10) Thread.sleep(10);   // a wait, not a timing check
                assertEquals(PROMPTS.length, inEngine(engine), "all eight requests reached the engine");
            } finally {
                cuda.open();
            }
            for (int i = 0; i < PROMPTS.length; i++) {
                JsonNode r = ok(together.get(i).get());
                assertEquals(alone.get(i), r.get("choices").get(0).get("text").asText(), PROMPTS[i]);
            }
            double draftTogether = passes(server, DRAFT_ID) - draftBefore, mainTogether = passes(server, MAIN_ID) - mainBefore;

            String counts = "draft passes " + draftTogether + " together, " + draftAlone + " alone; main passes " + mainTogether
                    + " together, " + mainAlone + " alone";
            System.out.println("cuda-host, 8 concurrent requests over HTTP: " + counts);
            assertTrue(draftTogether <= (2.0 * DRAFT_MAX + 1) * mainTogether, counts);
            assertTrue(2 * draftTogether < draftAlone, counts);
            assertTrue(2 * mainTogether < mainAlone, counts);
        }
    }

    /** Requests the engine holds: in the batch or waiting for it. */
    static int inEngine(Engine engine) {
        return engine.stats().active() + engine.stats().waiting();
    }
}
