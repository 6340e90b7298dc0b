package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** {@code GET /metrics} on a real server over the KJV pair: Prometheus text, moved by requests as their usage says. */
class MetricsServerTest {
    static final String COMPLETIONS_200 = "tandem_requests_total{endpoint=\"/v1/completions\",status=\"200\"}";
    static final String SPECULATIVE = ",\"draft_model\":\"kjv-draft-q8_0\",\"speculative\":{\"n_max\":4,\"p_min\":0}";

    @RegisterExtension
    static final ServerFixture KJV = new ServerFixture();

    @Test
    void everyMetricIsDeclaredWithTheTandemPrefix() throws Exception {
        Scrape s = Scrape.of(KJV.server());
        for (String name : new String[] {"tandem_requests_total counter", "tandem_generations_total counter",
                "tandem_prompt_tokens_total counter", "tandem_generated_tokens_total counter", "tandem_draft_tokens_total counter",
                "tandem_draft_accepted_tokens_total counter", "tandem_draft_rejected_tokens_total counter",
                "tandem_decode_tokens_per_second histogram", "tandem_last_decode_tokens_per_second gauge",
                "tandem_time_to_first_token_seconds histogram", "tandem_draft_acceptance_ratio gauge", "tandem_queue_depth gauge",
                "tandem_active_sequences gauge", "tandem_kv_blocks_in_use gauge", "tandem_kv_blocks_total gauge"}) {
            assertTrue(s.text().contains("# TYPE " + name + "\n"), name + " in\n" + s.text());
        }
        for (String line : s.text().split("\n")) {
            if (!line.isBlank() && !line.startsWith("# HELP") && !line.startsWith("# TYPE")) assertTrue(line.startsWith("tandem_"), line);
        }
    }

    @Test
    void theKvGaugesReadTheEnginesPoolAndAnIdleEngineHoldsNoBlocks() throws Exception {
        Scrape s = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        assertEquals(KJV.engine().stats().kvBlocksTotal(), s.get("tandem_kv_blocks_total"));
        assertTrue(s.get("tandem_kv_blocks_total") > 0);
        assertTrue(s.idle(), s.text());
    }

    @Test
    void aSpeculativeCompletionMovesTheCountersByItsUsage() throws Exception {
        Scrape before = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        HttpResponse<String> r = KJV.post("/v1/completions", completionBody("In the beginning God created", SPECULATIVE + ",\"max_tokens\":24"));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode usage = json(r).get("usage");
        double generations = before.get("tandem_generations_total{finish_reason=\"length\"}") + before.get("tandem_generations_total{finish_reason=\"stop\"}");
        // The counters move as the generation ends, on the engine's thread: wait for that, then compare.
        Scrape after = Scrape.until(KJV.server(), 10_000, s -> s.get("tandem_generations_total{finish_reason=\"length\"}")
                + s.get("tandem_generations_total{finish_reason=\"stop\"}") > generations && s.get(COMPLETIONS_200) > before.get(COMPLETIONS_200));
        assertEquals(before.get(COMPLETIONS_200) + 1, after.get(COMPLETIONS_200));
        assertEquals(usage.get("prompt_tokens").asDouble(), after.get("tandem_prompt_tokens_total") - before.get("tandem_prompt_tokens_total"));
        assertEquals(usage.get("completion_tokens").asDouble(), after.get("tandem_generated_tokens_total") - before.get("tandem_generated_tokens_total"));
        JsonNode details = usage.get("completion_tokens_details");
        double accepted = after.get("tandem_draft_accepted_tokens_total") - before.get("tandem_draft_accepted_tokens_total");
        double rejected = after.get("tandem_draft_rejected_tokens_total") - before.get("tandem_draft_rejected_tokens_total");
        assertEquals(details.get("accepted_prediction_tokens").asDouble(), accepted);
        assertEquals(details.get("rejected_prediction_tokens").asDouble(), rejected);
        assertEquals(json(r).get("stats").get("total_draft_tokens_count").asDouble(),
                after.get("tandem_draft_tokens_total") - before.get("tandem_draft_tokens_total"));
        assertTrue(accepted > 0, "speculation ran");
        double ratio = after.get("tandem_draft_accepted_tokens_total")
                / (after.get("tandem_draft_accepted_tokens_total") + after.get("tandem_draft_rejected_tokens_total"));
        assertEquals(ratio, after.get("tandem_draft_acceptance_ratio"), 1e-9);
        assertEquals(before.get("tandem_decode_tokens_per_second_count") + 1, after.get("tandem_decode_tokens_per_second_count"));
        assertEquals(json(r).get("stats").get("tokens_per_second").asDouble(), after.get("tandem_last_decode_tokens_per_second"), 1e-6);
        assertEquals(before.get("tandem_time_to_first_token_seconds_count") + 1, after.get("tandem_time_to_first_token_seconds_count"));
    }

    @Test
    void failuresAreCountedUnderTheirStatusAndUnknownPathsUnderOther() throws Exception {
        String badJson = "tandem_requests_total{endpoint=\"/v1/chat/completions\",status=\"400\"}";
        String unknownModel = "tandem_requests_total{endpoint=\"/v1/completions\",status=\"404\"}";
        String other = "tandem_requests_total{endpoint=\"other\",status=\"404\"}";
        Scrape before = Scrape.of(KJV.server());
        assertEquals(400, KJV.post("/v1/chat/completions", "{\"messages\": [").statusCode());
        assertEquals(404, KJV.post("/v1/completions", completionBody("x", ",\"model\":\"gpt-4o\"")).statusCode());
        assertEquals(404, KJV.post("/v1/embeddings/" + "x".repeat(20), "{}").statusCode());
        Scrape after = Scrape.until(KJV.server(), 10_000, s -> s.get(other) > before.get(other));
        assertEquals(before.get(badJson) + 1, after.get(badJson));
        assertEquals(before.get(unknownModel) + 1, after.get(unknownModel));
        assertEquals(before.get(other) + 1, after.get(other));
        assertFalse(after.text().contains("embeddings"), "a client's paths do not become label values");
    }

    /** Operators see batching at work: each loaded model's forward passes, the draft's only when a request drafts. */
    @Test
    void forwardPassesAreCountedPerModel() throws Exception {
        String main = "tandem_forward_passes_total{model=\"kjv-main-q8_0\"}", draft = "tandem_forward_passes_total{model=\"kjv-draft-q8_0\"}";
        Scrape before = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        JsonNode plain = json(KJV.post("/v1/completions", completionBody("And", ",\"max_tokens\":6,\"ignore_eos\":true")));
        Scrape afterPlain = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        // One pass per token: the prefill chooses the first.
        assertEquals(plain.get("usage").get("completion_tokens").asDouble(), afterPlain.get(main) - before.get(main), afterPlain.text());
        assertEquals(before.get(draft), afterPlain.get(draft), "a plain request runs no draft pass");

        JsonNode spec = json(KJV.post("/v1/completions", completionBody("In the beginning God created", SPECULATIVE + ",\"max_tokens\":24,\"ignore_eos\":true")));
        Scrape after = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        double mainPasses = after.get(main) - afterPlain.get(main), draftPasses = after.get(draft) - afterPlain.get(draft);
        assertTrue(mainPasses >= 2 && mainPasses < spec.get("usage").get("completion_tokens").asDouble(), after.text());   // drafts were accepted
        assertTrue(draftPasses > 1, after.text());
        assertEquals((double) KJV.engine().forwardPasses().get("kjv-draft-q8_0"), after.get(draft));
    }

    @Test
    void eachServerKeepsItsOwnRegistry() throws Exception {
        OpenAiServer second = new OpenAiServer(KJV.engine(), OpenAiServer.Options.defaults().withPort(0)).start();
        try {
            assertEquals(200, KJV.post("/v1/completions", completionBody("And", ",\"max_tokens\":2")).statusCode());
            Scrape.until(KJV.server(), 10_000, s -> s.get(COMPLETIONS_200) > 0);
            assertEquals(0, Scrape.of(second).get(COMPLETIONS_200), "the other server's requests are not counted here");
        } finally {
            second.close();
        }
    }

    @Test
    void healthAndMetricsStayOpenWhenAnApiKeyGuardsTheApi() throws Exception {
        OpenAiServer guarded = new OpenAiServer(KJV.engine(), OpenAiServer.Options.defaults().withPort(0).withApiKey("sesame")).start();
        try {
            assertEquals(401, get(guarded, "/v1/models").statusCode());
            assertEquals(200, get(guarded, "/health").statusCode());
            HttpResponse<String> metrics = get(guarded, "/metrics");
            assertEquals(200, metrics.statusCode());
            assertTrue(metrics.body().contains("tandem_requests_total{endpoint=\"/v1/models\",status=\"401\"} 1"), metrics.body());
        } finally {
            guarded.close();
        }
    }
}
