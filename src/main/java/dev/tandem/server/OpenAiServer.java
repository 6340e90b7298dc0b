package dev.tandem.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineOverloadedException;
import dev.tandem.engine.Generation;
import dev.tandem.engine.GenerationEvent;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.InvalidRequestException;
import dev.tandem.engine.UnknownModelException;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import jakarta.servlet.http.HttpServletResponse;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The OpenAI-compatible HTTP API over an {@link Engine}: {@code GET /v1/models}, {@code POST /v1/chat/completions},
 * {@code POST /v1/completions} (streamed as server-sent events or not), {@code GET /health} and {@code GET /metrics}
 * (Prometheus text, see {@link ServerMetrics}). Every failure is an OpenAI-style error object with a 4xx status
 * (5xx only for the server's own faults, without details). The API key, when set, guards {@code /v1/} only:
 * health checks and Prometheus scrapers usually carry no key.
 *
 * <p>Streams: each chunk is written and flushed as the engine produces it; when a write fails (the client went
 * away) the generation is cancelled, which frees its batch slot and K/V blocks. A non-streamed request watches its
 * connection while it waits ({@link HangUpProbe}) and cancels its generation the same way when the client hangs up.
 */
public final class OpenAiServer implements AutoCloseable {
    /**
     * @param host         interface to bind ("127.0.0.1" by default: not reachable from other machines)
     * @param port         0 for any free port
     * @param apiKey       when set, requests to /v1 need {@code Authorization: Bearer <key>} (/health and /metrics stay open)
     * @param maxBodyBytes larger request bodies get 413
     */
    public record Options(String host, int port, String apiKey, long maxBodyBytes) {
        public static Options defaults() { return new Options("127.0.0.1", 8080, null, 4L << 20); }

        public Options withPort(int p) { return new Options(host, p, apiKey, maxBodyBytes); }

        public Options withHost(String h) { return new Options(h, port, apiKey, maxBodyBytes); }

        public Options withApiKey(String k) { return new Options(host, port, k, maxBodyBytes); }

        public Options withMaxBodyBytes(long n) { return new Options(host, port, apiKey, n); }
    }

    private final Engine engine;
    private final Options options;
    private final ObjectMapper json = new ObjectMapper();
    private final RequestReader reader = new RequestReader(json);
    private final ResponseJson responses = new ResponseJson(json);
    private final ServerMetrics metrics;
    private final long started = System.currentTimeMillis() / 1000;
    private final Javalin app;

    public OpenAiServer(Engine engine, Options options) {
        this.engine = engine;
        this.options = options;
        this.metrics = new ServerMetrics(engine);
        this.app = Javalin.create(config -> {
            config.startup.showJavalinBanner = false;
            config.startup.showOldJavalinVersionWarning = false;
            config.concurrency.useVirtualThreads = true;
            config.http.maxRequestSize = options.maxBodyBytes();
            config.http.compressionStrategy = CompressionStrategy.NONE;
            config.http.prefer405over404 = true;       // a known path with the wrong method says so
            config.routes.before(this::checkApiKey);
            config.routes.after(ctx -> metrics.request(ctx.path(), ctx.statusCode()));
            config.routes.get("/health", ctx -> send(ctx, 200, health()));
            config.routes.get("/metrics", ctx -> ctx.contentType(metrics.contentType()).result(metrics.scrape()));
            config.routes.get("/v1/models", ctx -> send(ctx, 200, responses.models(engine.models(), started)));
            config.routes.post("/v1/chat/completions", ctx -> complete(ctx, true));
            config.routes.post("/v1/completions", ctx -> complete(ctx, false));
            config.routes.exception(Exception.class, this::onException);
            for (int status : new int[] {400, 404, 405, 413, 500}) {
                config.routes.error(status, this::errorWithoutBody);
            }
        });
    }

    /** Binds and starts serving; returns this. */
    public OpenAiServer start() {
        app.start(options.host(), options.port());
        return this;
    }

    /** The bound port (useful with port 0). */
    public int port() { return app.port(); }

    public String url() {
        String host = options.host().contains(":") ? "[" + options.host() + "]" : options.host();
        return "http://" + host + ":" + port();
    }

    @Override
    public void close() {
        app.stop();
    }

    private void checkApiKey(Context ctx) {
        if (options.apiKey() == null || !ctx.path().startsWith("/v1/")) return;
        String header = ctx.header("Authorization");
        if (header == null || !header.equals("Bearer " + options.apiKey())) {
            throw new ApiException(401, "invalid_request_error",
                    header == null ? "missing API key: send 'Authorization: Bearer <key>'" : "incorrect API key", null, "invalid_api_key");
        }
    }

    private void complete(Context ctx, boolean chat) throws IOException {
        JsonNode root = reader.parse(ctx.bodyAsBytes());
        RequestReader.Parsed p = chat ? reader.chat(root) : reader.completion(root);
        Generation g = engine.generate(p.request());
        g.result().thenAccept(metrics::finished);     // also when cancelled: its tokens were computed
        String id = (chat ? "chatcmpl-" : "cmpl-") + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
        long created = System.currentTimeMillis() / 1000;
        String model = engine.mainModel().id();
        if (!p.stream()) {
            GenerationOutput out = awaitWhileClientWaits(ctx, g);
            ObjectNode body = chat ? responses.chatCompletion(id, created, model, out.text(), out.finishReason(), out.stats())
                    : responses.textCompletion(id, created, model, out.text(), out.finishReason(), out.stats());
            send(ctx, 200, body);
            return;
        }
        stream(ctx, g, chat, id, created, model, p.includeUsage());
    }

    /**
     * Waits for a non-streamed result, checking every {@value #HANG_UP_PROBE_MILLIS} ms that the client is still
     * connected; a client that hung up gets its generation cancelled (which frees its batch slot and K/V blocks),
     * as nothing else would notice before the generation's natural end.
     */
    private static GenerationOutput awaitWhileClientWaits(Context ctx, Generation g) {
        HangUpProbe probe = HangUpProbe.of(ctx.req());
        while (!g.result().isDone()) {
            try {
                g.result().get(HANG_UP_PROBE_MILLIS, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                if (!g.isCancelRequested() && probe.clientGone()) g.cancel();    // it ends as cancelled at the next step
            } catch (ExecutionException e) {
                break;                                  // g.await() rethrows the engine's exception
            } catch (InterruptedException e) {
                g.cancel();
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (probe.tookNextRequestByte()) ctx.header("Connection", "close");
        return g.await();
    }

    private static final long HANG_UP_PROBE_MILLIS = 100;

    /** Writes the generation's events as SSE chunks as they come; a failed write cancels the generation. */
    private void stream(Context ctx, Generation g, boolean chat, String id, long created, String model, boolean includeUsage) {
        LinkedBlockingQueue<Object> events = new LinkedBlockingQueue<>();
        g.subscribe(new Flow.Subscriber<>() {
            @Override public void onSubscribe(Flow.Subscription s) { s.request(Long.MAX_VALUE); }
            @Override public void onNext(GenerationEvent e) { events.add(e); }
            @Override public void onError(Throwable t) { events.add(t); }
            @Override public void onComplete() {}
        });
        HttpServletResponse res = ctx.res();
        res.setStatus(200);
        res.setContentType("text/event-stream; charset=utf-8");
        res.setHeader("Cache-Control", "no-cache");
        res.setHeader("X-Accel-Buffering", "no");
        try {
            OutputStream out = res.getOutputStream();
            if (chat) event(out, responses.chunk(true, id, created, model, "assistant", "", null));
            while (true) {
                Object e = events.take();
                if (e instanceof GenerationEvent.Chunk c) {
                    if (!c.text().isEmpty()) event(out, responses.chunk(chat, id, created, model, null, c.text(), null));
                } else if (e instanceof GenerationEvent.Finished f) {
                    event(out, responses.chunk(chat, id, created, model, null, null, f.reason()));
                    if (includeUsage) event(out, responses.usageChunk(chat, id, created, model, f.stats()));
                    data(out, "[DONE]");
                    return;
                } else if (e instanceof Throwable t) {
                    event(out, errorBody(t).body);
                    return;
                }
            }
        } catch (IOException e) {
            g.cancel();                         // the client went away
        } catch (InterruptedException e) {
            g.cancel();
            Thread.currentThread().interrupt();
        }
    }

    private void event(OutputStream out, ObjectNode body) throws IOException {
        data(out, json.writeValueAsString(body));
    }

    private static void data(OutputStream out, String payload) throws IOException {
        out.write(("data: " + payload + "\n\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static final String ANSWERED = "tandem.answered";

    /** {"status":"ok","backend":"cuda","device":"NVIDIA H200, ..."}, plus "backend_fallback" when auto fell back to the CPU. */
    private ObjectNode health() {
        Engine.BackendInfo backend = engine.backend();
        ObjectNode o = json.createObjectNode().put("status", "ok").put("backend", backend.name()).put("device", backend.description());
        if (backend.fallbackReason() != null) o.put("backend_fallback", backend.fallbackReason());
        return o;
    }

    private void send(Context ctx, int status, ObjectNode body) throws JsonProcessingException {
        ctx.attribute(ANSWERED, Boolean.TRUE);
        ctx.status(status).contentType("application/json").result(json.writeValueAsString(body));
    }

    /** Statuses Javalin or Jetty set themselves (no route, body too large, ...) get an error object too. */
    private void errorWithoutBody(Context ctx) {
        if (ctx.attribute(ANSWERED) != null) return;
        int status = ctx.statusCode();
        String message = switch (status) {
            case 404 -> "no route for " + ctx.method() + " " + ctx.path();
            case 405 -> "method " + ctx.method() + " is not allowed on " + ctx.path();
            case 413 -> "the request body is larger than " + options.maxBodyBytes() + " bytes";
            case 500 -> "internal server error";
            default -> "bad request";
        };
        sendError(ctx, new ApiException(status, status >= 500 ? "server_error" : "invalid_request_error", message, null,
                status == 404 ? "not_found" : null));
    }

    private void sendError(Context ctx, ApiException e) {
        try {
            send(ctx, e.status, responses.error(e.getMessage(), e.type, e.param, e.code));
        } catch (JsonProcessingException impossible) {
            ctx.status(500).result("{\"error\":{\"message\":\"internal error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}");
        }
    }

    private record Failure(int status, ObjectNode body) {}

    /** Maps a failure to its status and error object. */
    private Failure errorBody(Throwable e) {
        ApiException a = switch (e) {
            case ApiException api -> api;
            case UnknownModelException u -> new ApiException(404, "invalid_request_error", u.getMessage(), u.param(), u.code());
            case InvalidRequestException i -> new ApiException(400, "invalid_request_error", i.getMessage(), i.param(), i.code());
            case EngineOverloadedException o -> new ApiException(503, "server_error", o.getMessage(), null, "server_overloaded");
            case HttpResponseException h -> new ApiException(h.getStatus(), "invalid_request_error",
                    h.getStatus() == 413 ? "the request body is larger than " + options.maxBodyBytes() + " bytes" : h.getMessage(), null, null);
            default -> new ApiException(500, "server_error", "internal server error (" + e.getClass().getSimpleName() + ")", null, null);
        };
        return new Failure(a.status, responses.error(a.getMessage(), a.type, a.param, a.code));
    }

    private void onException(Exception e, Context ctx) {
        Failure f = errorBody(e);
        if (f.status >= 500 && !(e instanceof EngineOverloadedException)) {
            System.err.println("tandem serve: internal error on " + ctx.method() + " " + ctx.path() + ": " + e);
        }
        if (e instanceof EngineOverloadedException) ctx.header("Retry-After", "1");
        try {
            send(ctx, f.status, f.body);
        } catch (JsonProcessingException impossible) {
            ctx.status(500);
        }
    }
}
