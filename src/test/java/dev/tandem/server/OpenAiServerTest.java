package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GatedBackend;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.Tandem;
import dev.tandem.tokenizer.ChatMessage;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/** A real server on 127.0.0.1 (ephemeral port) over the bundled KJV Q8_0 pair ({@link ServerFixture}), driven with java.net.http. */
class OpenAiServerTest {
    @RegisterExtension
    static final ServerFixture KJV = new ServerFixture(4, 16, o -> o.withMaxBodyBytes(64 * 1024));

    @Test
    void modelsListsTheMainModelAndItsDraft() throws Exception {
        HttpResponse<String> r = KJV.get("/v1/models");
        assertEquals(200, r.statusCode());
        JsonNode data = json(r).get("data");
        assertEquals("list", json(r).get("object").asText());
        assertEquals("kjv-main-q8_0", data.get(0).get("id").asText());
        assertEquals("model", data.get(0).get("object").asText());
        assertEquals("kjv-draft-q8_0", data.get(1).get("id").asText());
    }

    @Test
    void greedyChatEqualsTheEngineAndCountsUsage() throws Exception {
        HttpResponse<String> r = KJV.post("/v1/chat/completions", chatBody("Who made the heaven?", ""));
        assertEquals(200, r.statusCode(), r.body());
        JsonNode body = json(r);
        GenerationOutput direct = KJV.engine().generateBlocking(GenerationRequest.builder()
                .messages(ChatMessage.user("Who made the heaven?")).maxTokens(16).build());
        assertEquals("chat.completion", body.get("object").asText());
        JsonNode choice = body.get("choices").get(0);
        assertEquals("assistant", choice.get("message").get("role").asText());
        assertEquals(direct.text(), choice.get("message").get("content").asText());
        assertEquals(direct.finishReason().apiName(), choice.get("finish_reason").asText());
        JsonNode usage = body.get("usage");
        assertEquals(direct.stats().promptTokens(), usage.get("prompt_tokens").asInt());
        assertEquals(direct.tokenIds().length, usage.get("completion_tokens").asInt());
        assertEquals(usage.get("prompt_tokens").asInt() + usage.get("completion_tokens").asInt(), usage.get("total_tokens").asInt());
        assertTrue(body.get("stats").has("tokens_per_second") && body.get("stats").has("time_to_first_token"));
    }

    @Test
    void streamedChatCarriesTheSameTextInChunks() throws Exception {
        String plain = json(KJV.post("/v1/chat/completions", chatBody("Tell of Moses", ""))).get("choices").get(0).get("message").get("content").asText();
        HttpResponse<String> r = KJV.post("/v1/chat/completions", chatBody("Tell of Moses", ",\"stream\":true,\"stream_options\":{\"include_usage\":true}"));
        assertEquals(200, r.statusCode());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<JsonNode> ev = events(r.body());
        assertEquals("[DONE]", ev.getLast().asText());
        assertEquals("assistant", ev.get(0).get("choices").get(0).get("delta").get("role").asText());
        StringBuilder text = new StringBuilder();
        String finish = null;
        JsonNode usage = null;
        for (JsonNode e : ev.subList(0, ev.size() - 1)) {
            assertEquals("chat.completion.chunk", e.get("object").asText());
            if (e.get("choices").isEmpty()) {
                usage = e.get("usage");
                continue;
            }
            JsonNode c = e.get("choices").get(0);
            if (c.get("delta").has("content")) text.append(c.get("delta").get("content").asText());
            if (!c.get("finish_reason").isNull()) finish = c.get("finish_reason").asText();
        }
        assertEquals(plain, text.toString());
        assertNotNull(finish);
        assertNotNull(usage, "include_usage adds a usage chunk");
        assertTrue(usage.get("completion_tokens").asInt() > 0);
    }

    @Test
    void completionsStreamAndNotAgreeWithTheEngine() throws Exception {
        String prompt = "In the beginning God created";
        GenerationOutput direct = KJV.engine().generateBlocking(GenerationRequest.builder().prompt(prompt).maxTokens(16).build());
        JsonNode plain = json(KJV.post("/v1/completions", completionBody(prompt, "")));
        assertEquals("text_completion", plain.get("object").asText());
        assertEquals(direct.text(), plain.get("choices").get(0).get("text").asText());
        StringBuilder text = new StringBuilder();
        for (JsonNode e : events(KJV.post("/v1/completions", completionBody(prompt, ",\"stream\":true")).body())) {
            if (e.isTextual()) continue;
            text.append(e.get("choices").get(0).get("text").asText());
        }
        assertEquals(direct.text(), text.toString());
    }

    @Test
    void fourConcurrentRequestsEachEqualTheSameRequestAlone() throws Exception {
        String[] prompts = {"And the LORD said unto Moses", "Blessed are the", "The LORD is my shepherd", "And Jesus answered"};
        String[] alone = new String[prompts.length];
        for (int i = 0; i < prompts.length; i++) alone[i] = json(KJV.post("/v1/completions", completionBody(prompts[i], ""))).get("choices").get(0).get("text").asText();
        List<CompletableFuture<HttpResponse<String>>> together = new ArrayList<>();
        for (int i = 0; i < prompts.length; i++) {
            String body = completionBody(prompts[i], i % 2 == 0 ? ",\"stream\":true" : "");
            together.add(HTTP.sendAsync(HttpRequest.newBuilder(KJV.uri("/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString()));
        }
        for (int i = 0; i < prompts.length; i++) {
            String body = together.get(i).get().body();
            String text;
            if (i % 2 == 0) {
                StringBuilder b = new StringBuilder();
                for (JsonNode e : events(body)) if (!e.isTextual()) b.append(e.get("choices").get(0).get("text").asText());
                text = b.toString();
            } else {
                text = JSON.readTree(body).get("choices").get(0).get("text").asText();
            }
            assertEquals(alone[i], text, prompts[i]);
        }
    }

    @Test
    void aStopStringIsNeitherShownNorStreamed() throws Exception {
        String prompt = "And God said";
        String full = json(KJV.post("/v1/completions", completionBody(prompt, ""))).get("choices").get(0).get("text").asText();
        String stop = full.substring(6, 10);
        String expected = full.substring(0, full.indexOf(stop));
        String stopJson = JSON.writeValueAsString(List.of(stop, "zzzz-never"));
        JsonNode plain = json(KJV.post("/v1/completions", completionBody(prompt, ",\"stop\":" + stopJson)));
        assertEquals(expected, plain.get("choices").get(0).get("text").asText());
        assertEquals("stop", plain.get("choices").get(0).get("finish_reason").asText());
        StringBuilder streamed = new StringBuilder();
        for (JsonNode e : events(KJV.post("/v1/completions", completionBody(prompt, ",\"stream\":true,\"stop\":" + JSON.writeValueAsString(stop))).body())) {
            if (!e.isTextual()) streamed.append(e.get("choices").get(0).get("text").asText());
        }
        assertEquals(expected, streamed.toString());
    }

    @Test
    void aSeedMakesSampledTextRepeatableAndTopKOneIsGreedy() throws Exception {
        String prompt = "And the LORD said unto Moses";
        String greedy = json(KJV.post("/v1/completions", completionBody(prompt, ""))).get("choices").get(0).get("text").asText();
        String sampled = ",\"temperature\":1.0,\"top_k\":0,\"top_p\":1,\"min_p\":0,\"seed\":1234";
        String first = json(KJV.post("/v1/completions", completionBody(prompt, sampled))).get("choices").get(0).get("text").asText();
        String second = json(KJV.post("/v1/completions", completionBody(prompt, sampled))).get("choices").get(0).get("text").asText();
        assertEquals(first, second, "the same seed samples the same text");
        // With one candidate left, sampling at any temperature can only pick the most likely token.
        String topOne = json(KJV.post("/v1/completions", completionBody(prompt, ",\"temperature\":1.5,\"top_k\":1,\"seed\":7"))).get("choices").get(0).get("text").asText();
        assertEquals(greedy, topOne);
    }

    @Test
    void maxCompletionTokensLimitsTheReplyLikeMaxTokens() throws Exception {
        JsonNode r = json(KJV.post("/v1/chat/completions", chatBody("Who made the heaven?", ",\"max_completion_tokens\":5,\"ignore_eos\":true")));
        assertEquals(5, r.get("usage").get("completion_tokens").asInt(), r.toString());
        assertEquals("length", r.get("choices").get(0).get("finish_reason").asText());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "malformed JSON          | /v1/chat/completions | {\"messages\": [                                              | 400 | ",
            "not an object           | /v1/chat/completions | [1,2]                                                         | 400 | ",
            "missing messages        | /v1/chat/completions | {\"model\":\"kjv-main-q8_0\"}                                 | 400 | messages",
            "empty messages          | /v1/chat/completions | {\"messages\":[]}                                             | 400 | messages",
            "messages not an array   | /v1/chat/completions | {\"messages\":\"hi\"}                                         | 400 | messages",
            "temperature as a string | /v1/chat/completions | {\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":\"hot\"} | 400 | temperature",
            "negative temperature    | /v1/chat/completions | {\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":-1} | 400 | temperature",
            "max_tokens zero         | /v1/chat/completions | {\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":0} | 400 | max_tokens",
            "max_tokens negative     | /v1/completions      | {\"prompt\":\"x\",\"max_tokens\":-5}                         | 400 | max_tokens",
            "max_tokens huge         | /v1/completions      | {\"prompt\":\"x\",\"max_tokens\":100000000}                  | 400 | max_tokens",
            "max_tokens beyond int   | /v1/completions      | {\"prompt\":\"x\",\"max_tokens\":1e30}                       | 400 | max_tokens",
            "stop of the wrong type  | /v1/completions      | {\"prompt\":\"x\",\"stop\":5}                                | 400 | stop",
            "missing prompt          | /v1/completions      | {\"max_tokens\":5}                                            | 400 | prompt",
            "unknown model           | /v1/chat/completions | {\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]} | 404 | model",
            "unknown draft model     | /v1/completions      | {\"prompt\":\"x\",\"draft_model\":\"tiny\"}                   | 404 | draft_model",
            "speculative n_max zero  | /v1/completions      | {\"prompt\":\"x\",\"speculative\":{\"enabled\":true,\"n_max\":0}} | 400 | speculative.n_max",
            "speculative n_max negative | /v1/completions   | {\"prompt\":\"x\",\"draft_model\":\"kjv-draft-q8_0\",\"speculative\":{\"n_max\":-3}} | 400 | speculative.n_max",
            "n_max zero, speculation off | /v1/completions  | {\"prompt\":\"x\",\"speculative\":{\"n_max\":0}}       | 400 | speculative.n_max",
            "n_max over the maximum 32 | /v1/completions    | {\"prompt\":\"x\",\"speculative\":{\"enabled\":true,\"n_max\":33}} | 400 | speculative.n_max",
            "n_max 100000 (once killed the scheduler) | /v1/completions | {\"prompt\":\"In the\",\"max_tokens\":2,\"speculative\":{\"enabled\":true,\"n_max\":100000}} | 400 | speculative.n_max",
            "speculative p_min over 1 | /v1/completions     | {\"prompt\":\"x\",\"speculative\":{\"enabled\":true,\"p_min\":1.5}} | 400 | speculative.p_min",
            "speculative p_min negative | /v1/completions   | {\"prompt\":\"x\",\"speculative\":{\"enabled\":true,\"p_min\":-0.1}} | 400 | speculative.p_min",
            "speculative n_min over n_max | /v1/completions | {\"prompt\":\"x\",\"speculative\":{\"enabled\":true,\"n_max\":2,\"n_min\":3}} | 400 | speculative.n_min",
            "unknown speculative draft | /v1/completions    | {\"prompt\":\"x\",\"speculative\":{\"draft_model\":\"tiny\"}} | 404 | draft_model",
            "main model as draft_model | /v1/completions    | {\"prompt\":\"x\",\"draft_model\":\"kjv-main-q8_0\"} | 400 | draft_model",
            "n other than 1          | /v1/completions      | {\"prompt\":\"x\",\"n\":2}                             | 400 | n",
            "seed as a string        | /v1/completions      | {\"prompt\":\"x\",\"seed\":\"42\"}                   | 400 | seed",
            "top_k negative          | /v1/completions      | {\"prompt\":\"x\",\"top_k\":-1}                        | 400 | top_k",
            "min_p over 1            | /v1/completions      | {\"prompt\":\"x\",\"min_p\":2}                         | 400 | min_p",
            "stream not a boolean    | /v1/completions      | {\"prompt\":\"x\",\"stream\":\"yes\"}                | 400 | stream",
            "max_completion_tokens 0 | /v1/chat/completions | {\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_completion_tokens\":0} | 400 | max_completion_tokens",
            "message without a role  | /v1/chat/completions | {\"messages\":[{\"content\":\"x\"}]}                   | 400 | messages[0].role",
            "prompt token outside the vocabulary | /v1/completions | {\"prompt\":[1,99999999]}                             | 400 | prompt",
            "POST on a GET route     | /v1/models           | {}                                                            | 405 | ",
            "draft model as the model | /v1/completions     | {\"prompt\":\"x\",\"model\":\"kjv-draft-q8_0\"}       | 400 | model",
            "unknown path            | /v1/embeddings       | {}                                                            | 404 | ",
    })
    void badRequestsGetOpenAiErrors(String name, String path, String body, int status, String param) throws Exception {
        HttpResponse<String> r = KJV.post(path, body);
        assertEquals(status, r.statusCode(), name + ": " + r.body());
        JsonNode error = json(r).get("error");
        assertNotNull(error, r.body());
        assertFalse(error.get("message").asText().isBlank());
        assertFalse(r.body().contains("\tat "), "no stack trace");
        assertTrue(error.has("type") && error.has("param") && error.has("code"), r.body());
        if (param != null) assertEquals(param, error.get("param").asText(), r.body());
        assertEquals(200, KJV.post("/v1/completions", completionBody("And", ",\"max_tokens\":1")).statusCode(), "the server keeps serving");
    }

    @Test
    void aPromptOverTheContextIsRejectedWithBothNumbers() throws Exception {
        HttpResponse<String> r = KJV.post("/v1/completions", completionBody("and the LORD said ".repeat(400), ""));
        assertEquals(400, r.statusCode());
        JsonNode error = json(r).get("error");
        assertEquals("context_length_exceeded", error.get("code").asText());
        assertTrue(error.get("message").asText().contains("1024"), error.toString());
    }

    @Test
    void anOversizeBodyGets413() throws Exception {
        HttpResponse<String> r = KJV.postExpectingContinue("/v1/completions", completionBody("x".repeat(100_000), ""));
        assertEquals(413, r.statusCode(), r.body());
        assertNotNull(json(r).get("error"));
    }

    @Test
    void closingTheStreamCancelsTheGeneration() throws Exception {
        long cancelledBefore = KJV.engine().stats().cancelled();
        KJV.holdAfter(100);          // a few tokens, never the 1000 asked for: the stream is closed mid-generation
        HttpRequest req = HttpRequest.newBuilder(KJV.uri("/v1/completions"))
                .POST(HttpRequest.BodyPublishers.ofString(completionBody("The LORD", ",\"max_tokens\":1000,\"ignore_eos\":true,\"stream\":true"))).build();
        HttpResponse<InputStream> r = HTTP.send(req, HttpResponse.BodyHandlers.ofInputStream());
        BufferedReader lines = new BufferedReader(new InputStreamReader(r.body(), StandardCharsets.UTF_8));
        for (int events = 0; events < 3; ) {
            String line = lines.readLine();
            if (!line.isEmpty()) {
                assertTrue(line.startsWith("data: "), line);
                events++;
            }
        }
        r.body().close();
        KJV.stepUntil(() -> KJV.engine().stats().cancelled() > cancelledBefore);
        assertEquals(cancelledBefore + 1, KJV.engine().stats().cancelled());
    }

    @Test
    void aFullQueueGets503AndTheServerRecovers() throws Exception {
        try (GatedBackend gate = new GatedBackend();
             Engine small = Tandem.builder().model(MAIN).backend(gate).threads(1).parallel(1).maxQueue(0).build()) {
            OpenAiServer s = new OpenAiServer(small, OpenAiServer.Options.defaults().withPort(0)).start();
            try {
                gate.hold(50);          // the running generation cannot end before the second request has been refused
                HttpResponse<InputStream> running = HTTP.send(HttpRequest.newBuilder(uri(s, "/v1/completions"))
                        .POST(HttpRequest.BodyPublishers.ofString(completionBody("The LORD", ",\"max_tokens\":1000,\"ignore_eos\":true,\"stream\":true"))).build(),
                        HttpResponse.BodyHandlers.ofInputStream());
                BufferedReader lines = new BufferedReader(new InputStreamReader(running.body(), StandardCharsets.UTF_8));
                assertTrue(lines.readLine().startsWith("data: "));         // it holds the only slot now
                HttpResponse<String> rejected = post(s, "/v1/completions", completionBody("And", ""));
                assertEquals(503, rejected.statusCode());
                assertEquals("server_overloaded", json(rejected).get("error").get("code").asText());
                running.body().close();
                gate.open();
                HttpResponse<String> later;
                long waited = 0;
                do {
                    Thread.sleep(20);
                    waited += 20;
                    later = post(s, "/v1/completions", completionBody("And", ",\"max_tokens\":2"));
                } while (later.statusCode() == 503 && waited < 30_000);
                assertEquals(200, later.statusCode());
            } finally {
                gate.open();
                s.close();
            }
        }
    }

    @Test
    void anApiKeyIsRequiredWhenConfigured() throws Exception {
        OpenAiServer s = new OpenAiServer(KJV.engine(), OpenAiServer.Options.defaults().withPort(0).withApiKey("sesame")).start();
        try {
            String body = completionBody("And", ",\"max_tokens\":1");
            assertEquals(401, post(s, "/v1/completions", body).statusCode());
            assertEquals(401, post(s, "/v1/completions", body, "Authorization", "Bearer wrong").statusCode());
            assertEquals("invalid_api_key", json(post(s, "/v1/completions", body)).get("error").get("code").asText());
            assertEquals(200, post(s, "/v1/completions", body, "Authorization", "Bearer sesame").statusCode());
        } finally {
            s.close();
        }
    }
}
