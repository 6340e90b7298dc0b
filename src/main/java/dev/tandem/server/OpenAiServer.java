package dev.tandem.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineDrainingException;
import dev.tandem.engine.EngineFailedException;
import dev.tandem.engine.EngineOverloadedException;
import dev.tandem.engine.Generation;
import dev.tandem.engine.GenerationEvent;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.InvalidRequestException;
import dev.tandem.engine.UnknownModelException;
import dev.tandem.runtime.cuda.DeviceFaultException;
import io.javalin.Javalin;
import io.javalin.compression.CompressionStrategy;
import io.javalin.http.Context;
import io.javalin.http.HttpResponseException;
import jakarta.servlet.http.HttpServletResponse;
import org.eclipse.jetty.http.HttpException;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.ServerConnector;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The OpenAI-compatible HTTP API over an {@link Engine}: {@code GET /v1/models}, {@code POST /v1/chat/completions},
 * {@code POST /v1/completions} (streamed as server-sent events or not), {@code GET /health} (readiness),
 * {@code GET /health/live} (liveness) and {@code GET /metrics} (Prometheus text, see {@link ServerMetrics}). Every
 * failure is an OpenAI-style error object with a 4xx status (5xx only for the server's own faults, without
 * details). The API key, when set, guards {@code /v1/} only: health checks and Prometheus scrapers usually carry no
 * key.
 *
 * <p>Hostile clients: every error, Jetty's own included, is JSON ({@link JsonErrorHandler}); the body must be one
 * UTF-8 JSON object ({@link RequestReader}); a connection that stalls or trickles before its request is read is
 * closed (idle timeout, {@link HeaderDeadline}, a minimum body rate), while an answer may take as long as it takes.
 *
 * <p>Streams: each chunk is written and flushed as the engine produces it; when a write fails (the client went
 * away) the generation is cancelled, which frees its batch slot and K/V blocks. A non-streamed request watches its
 * connection while it waits ({@link HangUpProbe}) and cancels its generation the same way when the client hangs up.
 *
 * <p>Shutting down: once the engine drains ({@link Engine#drain}), new completions get 503 with {@code Retry-After}
 * and {@code /health} turns 503 "draining" so that load balancers stop sending, while the streams in flight go on to
 * their end ("shutdown" as the finish reason where the drain timeout cut them, then {@code [DONE]});
 * {@link #close()} lets them write their last events before it stops listening.
 */
public final class OpenAiServer implements AutoCloseable {
    /**
     * @param host         interface to bind ("127.0.0.1" by default: not reachable from other machines)
     * @param port         0 for any free port
     * @param apiKey       when set, requests to /v1 need {@code Authorization: Bearer <key>} (/health and /metrics stay open)
     * @param maxBodyBytes larger request bodies get 413
     * @param idleTimeout  a connection that sends nothing for this long while its request is due is closed (also
     *                     between keep-alive requests); its request line and headers must arrive within twice this
     */
    public record Options(String host, int port, String apiKey, long maxBodyBytes, Duration idleTimeout) {
        public static Options defaults() { return new Options("127.0.0.1", 8080, null, 4L << 20, Duration.ofSeconds(30)); }

        public Options withPort(int p) { return new Options(host, p, apiKey, maxBodyBytes, idleTimeout); }

        public Options withHost(String h) { return new Options(h, port, apiKey, maxBodyBytes, idleTimeout); }

        public Options withApiKey(String k) { return new Options(host, port, k, maxBodyBytes, idleTimeout); }

        public Options withMaxBodyBytes(long n) { return new Options(host, port, apiKey, n, idleTimeout); }

        public Options withIdleTimeout(Duration d) { return new Options(host, port, apiKey, maxBodyBytes, d); }
    }

    private final Engine engine;
    private final Options options;
    private final ObjectMapper json = new ObjectMapper();
    private final RequestReader reader = new RequestReader(json);
    private final ResponseJson responses = new ResponseJson(json);
    private final ServerMetrics metrics;
    private final long started = System.currentTimeMillis() / 1000;
    private final Javalin app;
    /** From {@link #startBeforeWarmUp()} until {@link #warmUp()} is done: not ready yet. */
    private volatile boolean warmingUp;
    /** Completion requests being answered, which {@link #close()} lets finish. */
    private final AtomicInteger completionsInFlight = new AtomicInteger();

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
            long idleMillis = options.idleTimeout().toMillis();
            config.jetty.modifyServer(server -> server.setErrorHandler(new JsonErrorHandler(responses)));
            config.jetty.modifyServletContextHandler(context -> context.setErrorHandler(new JsonErrorHandler(responses)));
            config.jetty.modifyHttpConfiguration(http -> {
                http.setIdleTimeout(idleMillis);           // a blocked body read gives up after this long
                http.setMinRequestDataRate(MIN_BODY_BYTES_PER_SECOND);     // and so does a body that trickles in
                http.setSendServerVersion(false);
                // Jetty caches header fields per connection and matches values ignoring case by default: on a
                // keep-alive connection "Bearer SESAME" then read as the "Bearer sesame" seen before, and the key passed.
                http.setHeaderCacheCaseSensitive(true);
            });
            // The connector's idle timeout closes a connection that stalls before or while sending its request.
            config.jetty.addConnector((server, http) -> {
                ServerConnector connector = new ServerConnector(server, new HttpConnectionFactory(http));
                connector.setHost(options.host());
                connector.setPort(options.port());
                connector.setIdleTimeout(idleMillis);
                connector.addEventListener(new HeaderDeadline(connector.getScheduler(), idleMillis));
                return connector;
            });
            config.routes.before(this::checkApiKey);
            config.routes.after(ctx -> metrics.request(ctx.path(), ctx.statusCode()));
            config.routes.get("/health", this::health);
            config.routes.get("/health/live", this::live);
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
        app.start();
        return this;
    }

    /**
     * Binds and starts serving, but not ready: {@code /health} answers 503 "warming_up" until {@link #warmUp()} is
     * done, while {@code /health/live} already says the process is alive. Returns this.
     */
    public OpenAiServer startBeforeWarmUp() {
        warmingUp = true;
        return start();
    }

    /** Runs {@link Engine#warmUp()}, after which {@code /health} reports ready. */
    public void warmUp() {
        engine.warmUp();
        warmingUp = false;
    }

    /** The bound port (useful with port 0). */
    public int port() { return app.port(); }

    public String url() {
        String host = options.host().contains(":") ? "[" + options.host() + "]" : options.host();
        return "http://" + host + ":" + port();
    }

    /**
     * Stops serving. Completions still being answered get up to {@value #CLOSE_WAIT_MILLIS} ms to write their last
     * events first (after {@link Engine#drain} they all have their end; without it they are cut off).
     */
    @Override
    public void close() {
        long until = System.nanoTime() + CLOSE_WAIT_MILLIS * 1_000_000;
        try {
            while (completionsInFlight.get() > 0 && System.nanoTime() - until < 0) Thread.sleep(10);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        app.stop();
    }

    static final long CLOSE_WAIT_MILLIS = 5_000;

    private void checkApiKey(Context ctx) {
        if (options.apiKey() == null || !ctx.path().startsWith("/v1/")) return;
        String header = ctx.header("Authorization");
        if (header == null || !sameKey(header, "Bearer " + options.apiKey())) {
            throw new ApiException(401, "invalid_request_error",
                    header == null ? "missing API key: send 'Authorization: Bearer <key>'" : "incorrect API key", null, "invalid_api_key");
        }
    }

    /**
     * Compares in constant time: the SHA-256 digests of both, so that neither the position of the first difference
     * nor the key's length shows in the time a wrong guess takes.
     */
    static boolean sameKey(String given, String expected) {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            byte[] a = sha.digest(given.getBytes(StandardCharsets.UTF_8));
            byte[] b = sha.digest(expected.getBytes(StandardCharsets.UTF_8));
            return MessageDigest.isEqual(a, b);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every Java platform has SHA-256", e);
        }
    }

    private void complete(Context ctx, boolean chat) throws IOException {
        completionsInFlight.incrementAndGet();
        try {
            answer(ctx, chat);
        } finally {
            completionsInFlight.decrementAndGet();
        }
    }

    private void answer(Context ctx, boolean chat) throws IOException {
        JsonNode root = reader.parse(body(ctx));
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
     * The request body, at most {@code maxBodyBytes} (413 beyond, before reading when Content-Length says so). A
     * read that fails is the client's doing: it hung up (a cancellation, status {@value #CLIENT_CLOSED_REQUEST} in
     * the metrics) or sent nothing for the idle timeout (408); neither is a server error.
     */
    private byte[] body(Context ctx) {
        long max = options.maxBodyBytes();
        long declared = ctx.req().getContentLengthLong();
        if (declared > max) throw tooLarge();
        byte[] body;
        try {
            body = ctx.req().getInputStream().readNBytes((int) Math.min(max + 1, Integer.MAX_VALUE - 8));
        } catch (IOException e) {
            throw unreadBody(ctx, e);
        }
        if (body.length > max) throw tooLarge();
        return body;
    }

    /**
     * Why a body could not be read: the client hung up (a cancellation), sent a malformed body (a bad chunk, which
     * Jetty reports as an early end of stream too, so the socket is asked whether the client is really gone), or
     * sent nothing for the idle timeout (408).
     */
    private ApiException unreadBody(Context ctx, IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof TimeoutException) {
                return new ApiException(408, "invalid_request_error", "the request body did not arrive within the idle timeout of "
                        + options.idleTimeout().toMillis() + " ms", null, "request_timeout");
            }
        }
        if (HangUpProbe.of(ctx.req()).clientGone()) {
            return new ApiException(CLIENT_CLOSED_REQUEST, "invalid_request_error", "the client closed the connection before sending the whole body",
                    null, "client_closed_request");
        }
        HttpException h = HttpException.asHttpException(e);
        int status = h != null && h.getCode() >= 400 && h.getCode() < 500 ? h.getCode() : 400;     // 408 for a body too slow
        return new ApiException(status, "invalid_request_error", (status == 408 ? "the request body arrives too slowly" : "the request body is malformed")
                + (h != null && h.getReason() != null ? ": " + h.getReason() : ""), null, status == 408 ? "request_timeout" : null);
    }

    /** A request body slower than this fails with 408: no real client uploads 4 MiB at less than 1 KiB/s. */
    static final long MIN_BODY_BYTES_PER_SECOND = 1024;

    /** nginx's status for a client that closed its connection before the answer: only the metrics ever show it. */
    static final int CLIENT_CLOSED_REQUEST = 499;

    private ApiException tooLarge() {
        return new ApiException(413, "invalid_request_error", "the request body is larger than " + options.maxBodyBytes() + " bytes", null, null);
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

    /**
     * Readiness, for load balancers: {"status":"ok","backend":"cuda","device":"NVIDIA H200, ..."} (plus
     * "backend_fallback" when auto fell back to the CPU) with 200 while new requests are welcome; 503 with status
     * "warming_up" before the engine's warm-up has run, "draining" from the first moment of a shutdown, and
     * "error" (with "error": why) once the engine is unusable.
     */
    private void health(Context ctx) throws JsonProcessingException {
        Engine.BackendInfo backend = engine.backend();
        Optional<String> failure = engine.failure();
        String status = failure.isPresent() ? "error" : engine.isDraining() ? "draining" : warmingUp ? "warming_up" : "ok";
        ObjectNode o = json.createObjectNode().put("status", status)
                .put("backend", backend.name()).put("device", backend.description());
        if (backend.fallbackReason() != null) o.put("backend_fallback", backend.fallbackReason());
        failure.ifPresent(reason -> o.put("error", reason));
        send(ctx, status.equals("ok") ? 200 : 503, o);
    }

    /**
     * Liveness, for restarting a stuck process: 200 {"status":"alive"} while the process answers, also while it warms
     * up or drains (restarting it then would only lose work); 503 {"status":"error"} once the engine is unusable.
     */
    private void live(Context ctx) throws JsonProcessingException {
        Optional<String> failure = engine.failure();
        ObjectNode o = json.createObjectNode().put("status", failure.isPresent() ? "error" : "alive");
        failure.ifPresent(reason -> o.put("error", reason));
        send(ctx, failure.isPresent() ? 503 : 200, o);
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
            case 413 -> tooLarge().getMessage();
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
            case EngineFailedException f -> new ApiException(503, "server_error", f.getMessage(), null, "engine_failed");
            case EngineDrainingException d -> new ApiException(503, "server_error", d.getMessage(), null, "server_shutting_down");
            case DeviceFaultException f -> new ApiException(500, "server_error", f.getMessage(), null, "device_fault");
            case HttpResponseException h -> new ApiException(h.getStatus(), "invalid_request_error",
                    h.getStatus() == 413 ? tooLarge().getMessage() : h.getMessage(), null, null);
            default -> new ApiException(500, "server_error", "internal server error (" + innermost(e).getClass().getSimpleName() + ")", null, null);
        };
        return new Failure(a.status, responses.error(a.getMessage(), a.type, a.param, a.code));
    }

    /** The error the engine's wrapping exception carries (an OutOfMemoryError in a sequence, say), else {@code e}. */
    private static Throwable innermost(Throwable e) {
        return e instanceof IllegalStateException && e.getCause() instanceof Error cause ? cause : e;
    }

    private void onException(Exception e, Context ctx) {
        Failure f = errorBody(e);
        if (f.status >= 500 && !(e instanceof EngineOverloadedException) && !(e instanceof EngineFailedException)
                && !(e instanceof EngineDrainingException)) {
            System.err.println("tandem serve: internal error on " + ctx.method() + " " + ctx.path() + ": " + innermost(e));
        }
        if (e instanceof EngineOverloadedException) ctx.header("Retry-After", "1");
        if (e instanceof EngineDrainingException) {
            // Retry soon, on a new connection: through a load balancer that reaches another replica.
            ctx.header("Retry-After", "1");
            ctx.header("Connection", "close");
        }
        try {
            send(ctx, f.status, f.body);
        } catch (JsonProcessingException impossible) {
            ctx.status(500);
        }
    }
}
