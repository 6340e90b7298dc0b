package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GatedBackend;
import dev.tandem.engine.Tandem;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A real server on 127.0.0.1 (an ephemeral port) over the bundled KJV Q8_0 pair, one engine thread, started before
 * a test class and closed after it:
 * <pre>{@code @RegisterExtension static final ServerFixture KJV = new ServerFixture();}</pre>
 * With it the HTTP helpers the server tests share; the static ones take any server, for tests that start a second.
 */
final class ServerFixture implements BeforeAllCallback, AfterAllCallback {
    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf");
    static final Path DRAFT = Path.of("test-models/kjv-draft-q8_0.gguf");
    static final ObjectMapper JSON = new ObjectMapper();
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    private final int parallel, maxQueue;
    private final UnaryOperator<OpenAiServer.Options> options;
    private final GatedBackend gate = new GatedBackend();
    private Engine engine;
    private OpenAiServer server;

    /** 4 batch slots, a queue of 16, the default server options. */
    ServerFixture() {
        this(4, 16, o -> o);
    }

    /** {@code options} adjusts the defaults (already on port 0). */
    ServerFixture(int parallel, int maxQueue, UnaryOperator<OpenAiServer.Options> options) {
        this.parallel = parallel;
        this.maxQueue = maxQueue;
        this.options = options;
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        engine = Tandem.builder().model(MAIN).draft(DRAFT).backend(gate).threads(1).parallel(parallel).maxQueue(maxQueue).build();
        server = new OpenAiServer(engine, options.apply(OpenAiServer.Options.defaults().withPort(0))).start();
    }

    @Override
    public void afterAll(ExtensionContext context) {
        // JUnit calls this even when beforeAll failed half way.
        if (server != null) server.close();
        gate.open();
        if (engine != null) engine.close();
        gate.close();
    }

    /**
     * From now on the engine stops at its gate after {@code passes} more forward passes (main and draft alike): a
     * generation of 1000 tokens started now cannot end before the test has done what it must do while it runs.
     */
    void holdAfter(long passes) {
        gate.hold(passes);
    }

    /**
     * Lets a held engine go on one pass per 20 ms until {@code done} holds (30 s at most), then opens its gate.
     * A hung-up stream is noticed only when a write fails, so the engine must make events while the test waits.
     */
    void stepUntil(BooleanSupplier done) throws InterruptedException {
        try {
            for (long waited = 0; !done.getAsBoolean() && waited < 30_000; waited += 20) {   // a wait, not a timing assertion
                gate.allow(1);
                Thread.sleep(20);
            }
        } finally {
            gate.open();
        }
    }

    Engine engine() {
        return engine;
    }

    OpenAiServer server() {
        return server;
    }

    /** A second server over the same engine, with {@code options} applied to the defaults (port 0); close it. */
    OpenAiServer another(UnaryOperator<OpenAiServer.Options> options) {
        return new OpenAiServer(engine, options.apply(OpenAiServer.Options.defaults().withPort(0))).start();
    }

    URI uri(String path) {
        return uri(server, path);
    }

    HttpResponse<String> get(String path) throws Exception {
        return get(server, path);
    }

    /** A JSON POST; {@code headers} are name, value pairs. */
    HttpResponse<String> post(String path, String body, String... headers) throws Exception {
        return post(server, path, body, headers);
    }

    /**
     * A JSON POST that waits for the server's verdict before sending the body (Expect: 100-continue), as clients
     * of large uploads do: a server that refuses a body it has not read answers and closes, and a client still
     * writing the body may see the closed connection instead of the answer.
     */
    HttpResponse<String> postExpectingContinue(String path, String body) throws Exception {
        HttpRequest request = HttpRequest.newBuilder(uri(server, path)).expectContinue(true)
                .POST(HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build();
        return HTTP.send(request, HttpResponse.BodyHandlers.ofString());
    }

    static URI uri(OpenAiServer s, String path) {
        return URI.create(s.url() + path);
    }

    static HttpResponse<String> get(OpenAiServer s, String path) throws Exception {
        return HTTP.send(HttpRequest.newBuilder(uri(s, path)).build(), HttpResponse.BodyHandlers.ofString());
    }

    static HttpResponse<String> post(OpenAiServer s, String path, String body, String... headers) throws Exception {
        HttpRequest.Builder b = HttpRequest.newBuilder(uri(s, path)).POST(HttpRequest.BodyPublishers.ofString(body))
                .header("Content-Type", "application/json");
        for (int i = 0; i < headers.length; i += 2) b.header(headers[i], headers[i + 1]);
        return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    static JsonNode json(HttpResponse<String> r) throws Exception {
        return JSON.readTree(r.body());
    }

    /** The JSON payloads of an SSE body, "[DONE]" as a text node. */
    static List<JsonNode> events(String body) throws Exception {
        List<JsonNode> out = new ArrayList<>();
        for (String block : body.split("\n\n")) {
            if (block.isBlank()) continue;
            assertTrue(block.startsWith("data: "), "SSE block: " + block);
            String data = block.substring(6);
            out.add(data.equals("[DONE]") ? JSON.getNodeFactory().textNode("[DONE]") : JSON.readTree(data));
        }
        return out;
    }

    /** A greedy chat request for the main model, 16 tokens at most; {@code extra} adds fields (",\"k\":v"). */
    static String chatBody(String content, String extra) {
        return "{\"model\":\"kjv-main-q8_0\",\"messages\":[{\"role\":\"user\",\"content\":" + JSON.getNodeFactory().textNode(content) + "}]"
                + ",\"temperature\":0,\"max_tokens\":16" + extra + "}";
    }

    /** A greedy completion request, 16 tokens at most; {@code extra} adds fields. */
    static String completionBody(String prompt, String extra) {
        return "{\"prompt\":" + JSON.getNodeFactory().textNode(prompt) + ",\"temperature\":0,\"max_tokens\":16" + extra + "}";
    }
}
