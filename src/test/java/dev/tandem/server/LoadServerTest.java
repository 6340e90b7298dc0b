package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Load on a real server over the KJV pair: 32 concurrent streams (chat and completions, with and without the
 * draft model) each give what they give alone, and leave no K/V block behind; a client that hangs up mid-stream
 * cancels its generation, and so does one that hangs up while waiting for a non-streamed answer. The timeouts bound a hang; they are not speed checks.
 */
class LoadServerTest {
    static final int REQUESTS = 32;
    static final String[] PROMPTS = {"And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd", "And Jesus answered",
            "In the beginning God created", "Who made the heaven?", "Tell of David", "And it came to pass"};

    /** 8 batch slots and room for the other 24 in the queue: the load runs both in the batch and through admission. */
    @RegisterExtension
    static final ServerFixture KJV = new ServerFixture(8, REQUESTS, o -> o);

    /** Request i: chat for odd i, completions for even; the draft model for i % 4 in {0, 1}; 16..31 new tokens. */
    record Call(String path, String body) {
        static Call number(int i) {
            String prompt = PROMPTS[i % PROMPTS.length];
            String extra = ",\"temperature\":0,\"max_tokens\":" + (16 + (i * 7) % 16) + ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"
                    + (i % 4 < 2 ? ",\"draft_model\":\"kjv-draft-q8_0\",\"speculative\":{\"n_max\":" + (2 + i % 3) + ",\"p_min\":0}" : "");
            String text = JSON.getNodeFactory().textNode(prompt).toString();
            return i % 2 == 1
                    ? new Call("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":" + text + "}]" + extra + "}")
                    : new Call("/v1/completions", "{\"prompt\":" + text + extra + "}");
        }

        HttpRequest request() {
            return HttpRequest.newBuilder(KJV.uri(path)).POST(HttpRequest.BodyPublishers.ofString(body)).build();
        }
    }

    /** A finished stream: its text, finish reason and usage. */
    record Streamed(String text, String finishReason, JsonNode usage) {
        static Streamed of(HttpResponse<String> r) throws Exception {
            assertEquals(200, r.statusCode(), r.body());
            List<JsonNode> events = events(r.body());
            assertEquals("[DONE]", events.getLast().asText(), "the stream ends with [DONE]");
            StringBuilder text = new StringBuilder();
            String finish = null;
            JsonNode usage = null;
            for (JsonNode e : events.subList(0, events.size() - 1)) {
                assertFalse(e.has("error"), e.toString());
                if (e.get("choices").isEmpty()) {
                    usage = e.get("usage");
                    continue;
                }
                JsonNode c = e.get("choices").get(0);
                JsonNode piece = c.has("delta") ? c.get("delta").get("content") : c.get("text");
                if (piece != null) text.append(piece.asText());
                if (!c.get("finish_reason").isNull()) finish = c.get("finish_reason").asText();
            }
            assertNotNull(finish, "a finish_reason");
            assertNotNull(usage, "the usage chunk");
            return new Streamed(text.toString(), finish, usage);
        }
    }

    @Test
    @Timeout(120)
    void thirtyTwoConcurrentStreamsEachEqualTheSameRequestAloneAndLeaveNoBlocks() throws Exception {
        Scrape before = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        long passes0 = KJV.engine().stats().forwardPasses();
        Streamed[] alone = new Streamed[REQUESTS];
        for (int i = 0; i < REQUESTS; i++) alone[i] = Streamed.of(HTTP.send(Call.number(i).request(), HttpResponse.BodyHandlers.ofString()));
        long passesAlone = KJV.engine().stats().forwardPasses() - passes0;

        List<CompletableFuture<HttpResponse<String>>> together = new ArrayList<>();
        for (int i = 0; i < REQUESTS; i++) together.add(HTTP.sendAsync(Call.number(i).request(), HttpResponse.BodyHandlers.ofString()));
        long tokens = 0, accepted = 0, prompt = 0;
        for (int i = 0; i < REQUESTS; i++) {
            Streamed s = Streamed.of(together.get(i).get());
            assertEquals(alone[i].text(), s.text(), "request " + i + " " + Call.number(i));
            assertEquals(alone[i].finishReason(), s.finishReason(), "request " + i);
            assertEquals(alone[i].usage().get("completion_tokens"), s.usage().get("completion_tokens"), "request " + i);
            if (i % 4 < 2) assertTrue(s.usage().get("completion_tokens_details").get("accepted_prediction_tokens").asInt() > 0, "request " + i + " speculated");
            for (Streamed r : new Streamed[] {alone[i], s}) {
                tokens += r.usage().get("completion_tokens").asLong();
                prompt += r.usage().get("prompt_tokens").asLong();
                accepted += r.usage().get("completion_tokens_details").get("accepted_prediction_tokens").asLong();
            }
        }

        long passesTogether = KJV.engine().stats().forwardPasses() - passes0 - passesAlone;
        // Shared passes prove the streams really ran in one batch (the same work alone took one pass per row group).
        assertTrue(passesTogether < passesAlone, "main-model passes: " + passesAlone + " alone, " + passesTogether + " together");
        double ended = before.get("tandem_generations_total{finish_reason=\"length\"}") + before.get("tandem_generations_total{finish_reason=\"stop\"}");
        Scrape after = Scrape.until(KJV.server(), 30_000, s -> s.idle() && s.get("tandem_generations_total{finish_reason=\"length\"}")
                + s.get("tandem_generations_total{finish_reason=\"stop\"}") == ended + 2 * REQUESTS);
        assertTrue(after.idle(), "no sequence running or waiting, no K/V block held:\n" + after.text());
        assertEquals(0, KJV.engine().stats().kvBlocksInUse());
        assertEquals(ended + 2 * REQUESTS, after.get("tandem_generations_total{finish_reason=\"length\"}")
                + after.get("tandem_generations_total{finish_reason=\"stop\"}"));
        assertEquals(tokens, after.get("tandem_generated_tokens_total") - before.get("tandem_generated_tokens_total"));
        assertEquals(prompt, after.get("tandem_prompt_tokens_total") - before.get("tandem_prompt_tokens_total"));
        assertEquals(accepted, after.get("tandem_draft_accepted_tokens_total") - before.get("tandem_draft_accepted_tokens_total"));
    }

    /** Hangs up (a raw socket, closed) after the first SSE event of an endless stream; the generation must end as cancelled. */
    @ParameterizedTest(name = "draft model: {0}")
    @ValueSource(booleans = {false, true})
    @Timeout(60)
    void aClientHangingUpMidStreamCancelsItsGenerationAndFreesItsBlocks(boolean speculative) throws Exception {
        Scrape before = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        String cancelled = "tandem_generations_total{finish_reason=\"cancelled\"}";
        String body = "{\"prompt\":\"The LORD\",\"max_tokens\":1000,\"ignore_eos\":true,\"stream\":true,\"temperature\":0"
                + (speculative ? ",\"draft_model\":\"kjv-draft-q8_0\"" : "") + "}";
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        long cancelledBefore = KJV.engine().stats().cancelled();
        KJV.holdAfter(100);          // a few tokens, never the 1000 asked for: the client hangs up mid-generation
        try (Socket socket = new Socket("127.0.0.1", KJV.server().port())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
                    + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(bytes);
            out.flush();
            BufferedReader in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
            assertTrue(in.readLine().startsWith("HTTP/1.1 200"));
            String line;
            do {
                line = in.readLine();
                assertNotNull(line, "the stream ended before its first event");
            } while (!line.startsWith("data: ") && !line.contains("data: "));     // chunked framing may share the line
        }
        KJV.stepUntil(() -> KJV.engine().stats().cancelled() > cancelledBefore);
        Scrape after = Scrape.until(KJV.server(), 30_000, s -> s.idle() && s.get(cancelled) > before.get(cancelled));
        assertEquals(before.get(cancelled) + 1, after.get(cancelled), "ended as cancelled, not by reaching max_tokens:\n" + after.text());
        assertTrue(after.idle(), after.text());
        assertTrue(after.get("tandem_generated_tokens_total") - before.get("tandem_generated_tokens_total") < 1000);
        assertEquals(0, KJV.engine().stats().kvBlocksInUse());
    }

    /**
     * Hangs up (a raw socket, closed) half a second into a non-streamed request whose answer would take 1000 tokens:
     * nothing has been written to that client, yet the generation must end as cancelled, and the server keeps serving.
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"/v1/completions", "/v1/chat/completions"})
    @Timeout(60)
    void aClientHangingUpBeforeItsNonStreamedAnswerCancelsItsGenerationAndFreesItsBlocks(String path) throws Exception {
        Scrape before = Scrape.until(KJV.server(), 10_000, Scrape::idle);
        String cancelled = "tandem_generations_total{finish_reason=\"cancelled\"}";
        String common = "\"max_tokens\":1000,\"ignore_eos\":true,\"stream\":false,\"temperature\":0";
        String body = path.endsWith("chat/completions")
                ? "{\"messages\":[{\"role\":\"user\",\"content\":\"The LORD\"}]," + common + "}"
                : "{\"prompt\":\"The LORD\"," + common + "}";
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        long cancelledBefore = KJV.engine().stats().cancelled();
        KJV.holdAfter(100);          // a few tokens, never the 1000 asked for: the client hangs up mid-generation
        try (Socket socket = new Socket("127.0.0.1", KJV.server().port())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: "
                    + bytes.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.write(bytes);
            out.flush();
            Scrape.until(KJV.server(), 10_000, s -> s.get("tandem_active_sequences") > 0);   // the generation is running
            Thread.sleep(500);
        }
        KJV.stepUntil(() -> KJV.engine().stats().cancelled() > cancelledBefore);
        Scrape after = Scrape.until(KJV.server(), 30_000, s -> s.idle() && s.get(cancelled) > before.get(cancelled));
        assertEquals(before.get(cancelled) + 1, after.get(cancelled), "ended as cancelled, not by reaching max_tokens:\n" + after.text());
        assertTrue(after.idle(), after.text());
        assertTrue(after.get("tandem_generated_tokens_total") - before.get("tandem_generated_tokens_total") < 1000);
        assertEquals(0, KJV.engine().stats().kvBlocksInUse());

        HttpResponse<String> next = HTTP.send(HttpRequest.newBuilder(KJV.uri("/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"The LORD\",\"max_tokens\":4,\"temperature\":0}")).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(200, next.statusCode(), next.body());
        assertEquals("length", JSON.readTree(next.body()).get("choices").get(0).get("finish_reason").asText(), next.body());
    }
}
