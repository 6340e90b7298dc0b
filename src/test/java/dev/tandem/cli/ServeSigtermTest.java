package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code tandem serve} as a real process, stopped by SIGTERM (what Kubernetes sends) while 8 streams run: each ends
 * properly, finished or cut at the drain timeout with finish reason "shutdown", then {@code [DONE]}; from the first
 * moment {@code /health} says "draining" and a new request gets 503 with {@code Retry-After}; the process exits 0.
 * One stream asks for the whole context, so the drain lasts until its timeout and there is time to ask.
 */
class ServeSigtermTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
    static final int STREAMS = 8, SHORT_MAX_TOKENS = 32;
    /** Bounds a hang (a server that never exits); not a speed check. */
    static final long HANG_GUARD_SECONDS = 180;

    @TempDir Path tmp;

    @Test
    void sigtermDrainsTheStreamsRefusesNewRequestsAndExitsZero() throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        Path errLog = tmp.resolve("serve.err");
        Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                "dev.tandem.cli.Main", "serve", "-m", "test-models/kjv-main-q8_0.gguf", "--backend", "cpu", "--threads", "1",
                "--port", "0", "--parallel", Integer.toString(STREAMS), "--drain-timeout", "4s")
                .redirectError(errLog.toFile()).start();
        ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor();
        try {
            String url = awaitUrl(p, errLog);
            HttpResponse<String> ready = get(url + "/health");
            assertEquals(200, ready.statusCode(), "ready once it announces itself (warmed up): " + ready.body());

            List<CountDownLatch> started = new ArrayList<>();
            List<CompletableFuture<List<String>>> streams = new ArrayList<>();
            for (int i = 0; i < STREAMS; i++) {
                CountDownLatch first = new CountDownLatch(1);
                started.add(first);
                String max = i == 0 ? "" : ",\"max_tokens\":" + SHORT_MAX_TOKENS;     // stream 0: up to the full context
                String body = "{\"prompt\":\"And it came to pass " + i + "\",\"temperature\":0,\"ignore_eos\":true,\"stream\":true,\"stream_options\":{\"include_usage\":true}" + max + "}";
                streams.add(CompletableFuture.supplyAsync(() -> stream(url, body, first), clients));
            }
            for (CountDownLatch first : started) assertTrue(first.await(HANG_GUARD_SECONDS, TimeUnit.SECONDS), "every stream has begun");

            p.destroy();        // SIGTERM
            HttpResponse<String> health = get(url + "/health");
            while (health.statusCode() == 200) health = get(url + "/health");
            assertEquals(503, health.statusCode(), health.body());
            assertEquals("draining", JSON.readTree(health.body()).path("status").asText());

            HttpResponse<String> refused = HTTP.send(HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
                    .POST(HttpRequest.BodyPublishers.ofString("{\"prompt\":\"Blessed are the\",\"max_tokens\":4}")).build(),
                    HttpResponse.BodyHandlers.ofString());
            assertEquals(503, refused.statusCode(), refused.body());
            assertEquals("1", refused.headers().firstValue("Retry-After").orElse(null));
            assertEquals("server_shutting_down", JSON.readTree(refused.body()).path("error").path("code").asText());

            for (int i = 0; i < STREAMS; i++) {
                List<String> lines = streams.get(i).get(HANG_GUARD_SECONDS, TimeUnit.SECONDS);
                assertEquals("data: [DONE]", lines.getLast(), "stream " + i + " ends properly");
                JsonNode end = JSON.readTree(lines.get(lines.size() - 3).substring("data: ".length()));
                JsonNode usage = JSON.readTree(lines.get(lines.size() - 2).substring("data: ".length())).path("usage");
                String reason = end.path("choices").path(0).path("finish_reason").asText();
                assertTrue(reason.equals("length") || reason.equals("shutdown"), "stream " + i + ": " + reason);
                int tokens = usage.path("completion_tokens").asInt();
                assertTrue(tokens > 0, "stream " + i + " had begun");
                if (i > 0 && reason.equals("length")) assertEquals(SHORT_MAX_TOKENS, tokens, "stream " + i + " finished whole");
            }
            assertTrue(p.waitFor(HANG_GUARD_SECONDS, TimeUnit.SECONDS), "the process ends");
            String err = Files.readString(errLog);
            assertEquals(0, p.exitValue(), err);
            assertFalse(err.contains("\tat ") || err.contains("Exception"), err);
            assertTrue(err.contains("tandem serve: stopped"), err);
        } finally {
            clients.shutdownNow();
            p.destroyForcibly();
        }
    }

    /** Reads the startup line "... at http://127.0.0.1:PORT/v1" from the process's standard output. */
    private static String awaitUrl(Process p, Path errLog) throws Exception {
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        Pattern at = Pattern.compile(" at (http://\\S+)/v1");
        for (String line = out.readLine(); line != null; line = out.readLine()) {
            Matcher m = at.matcher(line);
            if (m.find()) {
                Thread.ofVirtual().start(() -> out.lines().forEach(l -> { }));     // keep the pipe from filling
                return m.group(1);
            }
        }
        fail("tandem serve ended before announcing itself: " + Files.readString(errLog));
        return null;
    }

    private static HttpResponse<String> get(String url) throws Exception {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).build(), HttpResponse.BodyHandlers.ofString());
        } catch (ConnectException e) {
            throw new AssertionError("the server stopped listening before its drain ended", e);
        }
    }

    /** The non-empty lines of a streamed completion; {@code first} counts down at the first one. */
    private static List<String> stream(String url, String body, CountDownLatch first) {
        try {
            HttpResponse<Stream<String>> r = HTTP.send(HttpRequest.newBuilder(URI.create(url + "/v1/completions"))
                    .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build(),
                    HttpResponse.BodyHandlers.ofLines());
            assertEquals(200, r.statusCode());
            List<String> lines = new ArrayList<>();
            r.body().filter(l -> !l.isEmpty()).forEach(l -> {
                first.countDown();
                lines.add(l);
            });
            return lines;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
