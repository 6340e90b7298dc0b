package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** Speculative requests over HTTP on the bundled KJV Q8_0 pair: the same text as plain requests, with real draft counts. */
class SpeculativeServerTest {
    static final String DRAFT_ID = "kjv-draft-q8_0";
    /** Up to 4 draft tokens every step (no p-min), so that speculation surely runs. */
    static final String SPECULATIVE = ",\"draft_model\":\"" + DRAFT_ID + "\",\"speculative\":{\"n_max\":4,\"p_min\":0}";

    @RegisterExtension
    static final ServerFixture KJV = new ServerFixture();

    static String completion(String prompt, String extra) {
        return "{\"prompt\":" + JSON.getNodeFactory().textNode(prompt) + ",\"temperature\":0,\"max_tokens\":32" + extra + "}";
    }

    static String chat(String content, String extra) {
        return "{\"messages\":[{\"role\":\"user\",\"content\":" + JSON.getNodeFactory().textNode(content) + "}]"
                + ",\"temperature\":0,\"max_tokens\":32" + extra + "}";
    }

    static JsonNode complete(String prompt, String extra) throws Exception {
        HttpResponse<String> r = KJV.post("/v1/completions", completion(prompt, extra));
        assertEquals(200, r.statusCode(), r.body());
        return json(r);
    }

    static String text(JsonNode completion) {
        return completion.get("choices").get(0).get("text").asText();
    }

    /** The streamed text, and the last usage chunk's object (null without include_usage). */
    record Streamed(String text, JsonNode usageChunk) {}

    static Streamed stream(String path, String body) throws Exception {
        HttpResponse<String> r = KJV.post(path, body);
        assertEquals(200, r.statusCode(), r.body());
        StringBuilder text = new StringBuilder();
        JsonNode usage = null;
        for (JsonNode e : events(r.body())) {
            if (e.isTextual()) continue;
            if (e.get("choices").isEmpty()) {
                usage = e;
                continue;
            }
            JsonNode c = e.get("choices").get(0);
            JsonNode piece = c.has("delta") ? c.get("delta").get("content") : c.get("text");
            if (piece != null) text.append(piece.asText());
        }
        return new Streamed(text.toString(), usage);
    }

    /** Draft counts in stats and usage, consistent with each other and with LM Studio's meaning. */
    static void assertDraftCounts(JsonNode usage, JsonNode stats, String draft) {
        assertEquals(draft, stats.get("draft_model").asText());
        long drafted = stats.get("total_draft_tokens_count").asLong(), accepted = stats.get("accepted_draft_tokens_count").asLong();
        long rejected = stats.get("rejected_draft_tokens_count").asLong(), ignored = stats.get("ignored_draft_tokens_count").asLong();
        assertTrue(drafted > 0 && accepted > 0, stats.toString());
        assertEquals(drafted, accepted + rejected + ignored, stats.toString());
        JsonNode details = usage.get("completion_tokens_details");
        assertEquals(accepted, details.get("accepted_prediction_tokens").asLong());
        assertEquals(rejected, details.get("rejected_prediction_tokens").asLong());
    }

    @Test
    void greedyWithADraftModelReturnsThePlainTextAndCountsTheDrafts() throws Exception {
        String prompt = "In the beginning God created";
        JsonNode plain = complete(prompt, "");
        JsonNode spec = complete(prompt, SPECULATIVE);
        assertEquals(text(plain), text(spec));
        assertEquals(plain.get("usage").get("completion_tokens").asInt(), spec.get("usage").get("completion_tokens").asInt());
        assertDraftCounts(spec.get("usage"), spec.get("stats"), DRAFT_ID);
        assertFalse(plain.get("stats").has("draft_model"));
        assertEquals(0, plain.get("usage").get("completion_tokens_details").get("accepted_prediction_tokens").asInt());
    }

    @Test
    void aStreamedSpeculativeChatCarriesThePlainTextAndItsCounts() throws Exception {
        String plain = json(KJV.post("/v1/chat/completions", chat("Tell of Moses", "")))
                .get("choices").get(0).get("message").get("content").asText();
        Streamed s = stream("/v1/chat/completions", chat("Tell of Moses",
                ",\"stream\":true,\"stream_options\":{\"include_usage\":true}" + SPECULATIVE));
        assertEquals(plain, s.text());
        assertNotNull(s.usageChunk());
        assertDraftCounts(s.usageChunk().get("usage"), s.usageChunk().get("stats"), DRAFT_ID);
    }

    @Test
    void theSpeculativeObjectAloneNamesTheDraftAndEnabledFalseTurnsItOff() throws Exception {
        String prompt = "And the LORD said unto Moses";
        JsonNode plain = complete(prompt, "");
        JsonNode inner = complete(prompt, ",\"speculative\":{\"draft_model\":\"" + DRAFT_ID + "\",\"n_max\":3,\"p_min\":0}");
        assertEquals(text(plain), text(inner));
        assertDraftCounts(inner.get("usage"), inner.get("stats"), DRAFT_ID);
        JsonNode off = complete(prompt, ",\"draft_model\":\"" + DRAFT_ID + "\",\"speculative\":{\"enabled\":false}");
        assertEquals(text(plain), text(off));
        assertFalse(off.get("stats").has("draft_model"), off.get("stats").toString());
    }

    @Test
    void ngramAsTheDraftModelIsPromptLookup() throws Exception {
        String prompt = "And God said, Let there be light: and there was light. And God said, Let there be";
        JsonNode plain = complete(prompt, "");
        JsonNode spec = complete(prompt, ",\"draft_model\":\"ngram\",\"speculative\":{\"n_max\":4}");
        assertEquals(text(plain), text(spec));
        assertDraftCounts(spec.get("usage"), spec.get("stats"), "ngram");
    }

    @Test
    void fourConcurrentSpeculativeRequestsEachEqualTheSameRequestAlone() throws Exception {
        String[] prompts = {"And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd", "And Jesus answered"};
        String[] alone = new String[prompts.length];
        for (int i = 0; i < prompts.length; i++) alone[i] = text(complete(prompts[i], ""));
        List<CompletableFuture<HttpResponse<String>>> together = new ArrayList<>();
        for (int i = 0; i < prompts.length; i++) {
            String body = completion(prompts[i], SPECULATIVE + (i % 2 == 0 ? ",\"stream\":true" : ""));
            together.add(HTTP.sendAsync(HttpRequest.newBuilder(KJV.uri("/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < prompts.length; i++) {
            HttpResponse<String> r = together.get(i).get();
            assertEquals(200, r.statusCode(), r.body());
            String text;
            if (i % 2 == 0) {
                StringBuilder b = new StringBuilder();
                for (JsonNode e : events(r.body())) if (!e.isTextual()) b.append(e.get("choices").get(0).get("text").asText());
                text = b.toString();
            } else {
                JsonNode body = JSON.readTree(r.body());
                text = text(body);
                assertDraftCounts(body.get("usage"), body.get("stats"), DRAFT_ID);
            }
            assertEquals(alone[i], text, prompts[i]);
        }
        assertEquals(0, KJV.engine().stats().kvBlocksInUse());
    }
}
