package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.JsonValue;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import dev.tandem.engine.Engine;
import dev.tandem.engine.Tandem;
import org.junit.jupiter.api.Test;

import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.stream.Stream;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Readiness and graceful shutdown over HTTP, each test on an engine of its own (a drained engine takes nothing more):
 * {@code /health} is not ready until the warm-up has run and turns "draining" from the first moment of a drain, while
 * {@code /health/live} stays alive; a new request then gets 503 with {@code Retry-After}; a stream that the drain
 * timeout cuts ends with finish reason "shutdown" and {@code [DONE]}, which the official OpenAI SDK reads without error.
 */
class DrainServerTest {
    static Engine engine() {
        return Tandem.builder().model(MAIN).draft(DRAFT).threads(1).parallel(2).maxQueue(8).drainTimeout(Duration.ofMinutes(5)).build();
    }

    @Test
    void notReadyUntilWarmedUpWhileAliveThroughout() throws Exception {
        Engine engine = engine();
        OpenAiServer server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withPort(0)).startBeforeWarmUp();
        try {
            HttpResponse<String> health = get(server, "/health");
            assertEquals(503, health.statusCode(), health.body());
            assertEquals("warming_up", json(health).path("status").asText());
            assertEquals(200, get(server, "/health/live").statusCode());
            assertEquals("alive", json(get(server, "/health/live")).path("status").asText());

            server.warmUp();
            health = get(server, "/health");
            assertEquals(200, health.statusCode(), health.body());
            assertEquals("ok", json(health).path("status").asText());
            assertEquals(200, get(server, "/health/live").statusCode());
        } finally {
            server.close();
            engine.close();
        }
    }

    @Test
    void aDrainRefusesNewRequestsAndEndsTheStreamsItCutsWithShutdownThenDone() throws Exception {
        Engine engine = engine();
        OpenAiServer server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withPort(0)).start();
        OpenAIClient sdk = OpenAIOkHttpClient.builder().baseUrl(server.url() + "/v1").apiKey("none").maxRetries(0).timeout(Duration.ofSeconds(120)).build();
        // A thread per client: the common pool may have one worker, and the first stream would hold it to its end.
        ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
        try {
            // Two streams up to the full context (no max_tokens, end-of-generation ignored): far from done when the drain comes.
            CountDownLatch sdkStarted = new CountDownLatch(1), rawStarted = new CountDownLatch(1);
            CompletableFuture<List<String>> sdkReasons = CompletableFuture.supplyAsync(() -> {
                ChatCompletionCreateParams params = ChatCompletionCreateParams.builder().model("kjv-main-q8_0").addUserMessage("Who made the heaven?")
                        .temperature(0.0).putAdditionalBodyProperty("ignore_eos", JsonValue.from(true)).build();
                List<String> reasons = new ArrayList<>();
                try (StreamResponse<ChatCompletionChunk> stream = sdk.chat().completions().createStreaming(params)) {
                    stream.stream().forEach(chunk -> {
                        sdkStarted.countDown();
                        for (ChatCompletionChunk.Choice c : chunk.choices()) c.finishReason().ifPresent(r -> reasons.add(r.asString()));
                    });
                }
                return reasons;
            }, clients);
            HttpRequest raw = HttpRequest.newBuilder(uri(server, "/v1/completions")).header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"In the beginning\",\"temperature\":0,\"ignore_eos\":true,\"stream\":true}")).build();
            CompletableFuture<List<String>> rawLines = CompletableFuture.supplyAsync(() -> {
                try {
                    HttpResponse<Stream<String>> r = HTTP.send(raw, HttpResponse.BodyHandlers.ofLines());
                    assertEquals(200, r.statusCode());
                    List<String> lines = new ArrayList<>();
                    r.body().filter(l -> !l.isEmpty()).forEach(l -> {
                        rawStarted.countDown();
                        lines.add(l);
                    });
                    return lines;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            }, clients);
            sdkStarted.await();
            rawStarted.await();
            engine.drain(Duration.ZERO);        // the drain timeout passes at once: both streams are cut

            HttpResponse<String> health = get(server, "/health");
            assertEquals(503, health.statusCode(), "load balancers stop sending from the first moment");
            assertEquals("draining", json(health).path("status").asText());
            assertEquals(200, get(server, "/health/live").statusCode(), "a draining process is alive: no restart");

            HttpResponse<String> refused = post(server, "/v1/chat/completions", chatBody("Blessed are the", ""));
            assertEquals(503, refused.statusCode(), refused.body());
            assertEquals("1", refused.headers().firstValue("Retry-After").orElse(null));
            JsonNode error = json(refused).path("error");
            assertEquals("server_error", error.path("type").asText());
            assertEquals("server_shutting_down", error.path("code").asText());
            assertTrue(error.path("message").asText().contains("shutting down"), refused.body());

            assertEquals(List.of("shutdown"), sdkReasons.get(), "the SDK reads the unknown finish reason as it is");
            List<String> lines = rawLines.get();
            assertEquals("data: [DONE]", lines.getLast(), "the stream ends properly");
            JsonNode last = JSON.readTree(lines.get(lines.size() - 2).substring("data: ".length()));
            assertEquals("shutdown", last.path("choices").path(0).path("finish_reason").asText());
            assertEquals(0, engine.stats().kvBlocksInUse());
        } finally {
            clients.shutdownNow();
            sdk.close();
            server.close();
            engine.close();
        }
    }
}
