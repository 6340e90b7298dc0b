package dev.tandem.server;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14's scripted abuse run against one server: clients that stall mid-request are held open throughout, the
 * hostile requests the issue found are sent, then 40 concurrent requests (chat and completions, streamed or not,
 * with and without the draft model, some hanging up mid-stream or mid-body, some malformed). Afterwards the stalled
 * connections have been closed by the server, {@code /health} is 200, the gauges are back to 0 active, 0 queued and
 * 0 K/V blocks, no request was counted as a server error, and a greedy request gives what it gave before.
 * Socket timeouts and waits only bound hangs.
 */
class AbuseServerTest {
    static final int HANG_GUARD_MILLIS = 60_000;
    static final int CONCURRENT = 40;

    @RegisterExtension
    static final ServerFixture KJV = new ServerFixture(4, CONCURRENT + 8, o -> o.withMaxBodyBytes(64 * 1024).withIdleTimeout(Duration.ofSeconds(2)));

    /** A scripted hostile request and the status it must get. */
    record Hostile(String name, byte[] request, int status) {
        static Hostile post(String name, String path, String body, int status) {
            return new Hostile(name, RawHttp.request("POST", path, body.getBytes(StandardCharsets.UTF_8), "Content-Type", "application/json"), status);
        }

        static Hostile raw(String name, String request, int status) {
            return new Hostile(name, request.getBytes(StandardCharsets.ISO_8859_1), status);
        }
    }

    static List<Hostile> hostile() {
        List<Hostile> h = new ArrayList<>();
        h.add(Hostile.post("n_max 100000 (killed the scheduler)", "/v1/completions",
                "{\"prompt\":\"In the\",\"max_tokens\":2,\"speculative\":{\"enabled\":true,\"n_max\":100000}}", 400));
        h.add(Hostile.post("top_p 1e-320", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2,\"top_p\":1e-320}", 400));
        h.add(Hostile.post("temperature 1e39", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2,\"temperature\":1e39}", 400));
        h.add(Hostile.post("trailing garbage", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2} garbage", 400));
        h.add(Hostile.post("BOM", "/v1/completions", "\uFEFF{\"prompt\":\"x\",\"max_tokens\":2}", 400));
        h.add(new Hostile("UTF-16", RawHttp.request("POST", "/v1/completions",
                "{\"prompt\":\"x\",\"max_tokens\":2}".getBytes(StandardCharsets.UTF_16), "Content-Type", "application/json"), 400));
        h.add(Hostile.post("deep nesting", "/v1/completions", "{\"prompt\":" + "[".repeat(20_000) + "}", 400));
        h.add(Hostile.post("max_tokens 1e30", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":1e30}", 400));
        h.add(Hostile.post("max_tokens over the context", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":5000}", 400));
        h.add(Hostile.post("17 stop strings", "/v1/completions", "{\"prompt\":\"x\",\"max_tokens\":2,\"stop\":[" + "\"a\",".repeat(16) + "\"b\"]}", 400));
        h.add(Hostile.post("1025 messages", "/v1/chat/completions",
                "{\"max_tokens\":2,\"messages\":[" + "{\"role\":\"user\",\"content\":\"x\"},".repeat(1024) + "{\"role\":\"user\",\"content\":\"x\"}]}", 400));
        h.add(Hostile.post("token outside the vocabulary", "/v1/completions", "{\"prompt\":[1,2147483647],\"max_tokens\":2}", 400));
        h.add(Hostile.raw("bad URI", "GET /v1/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400));
        h.add(Hostile.raw("URI too long", "GET /v1/" + "a".repeat(100_000) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414));
        h.add(Hostile.raw("header too large", "GET /health HTTP/1.1\r\nHost: x\r\nX: " + "h".repeat(100_000) + "\r\nConnection: close\r\n\r\n", 431));
        h.add(Hostile.raw("bad header", "GET /health HTTP/1.1\r\nHost: x\r\nno colon\r\nConnection: close\r\n\r\n", 400));
        h.add(Hostile.raw("wrong method", "DELETE /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 405));
        h.add(Hostile.raw("no route", "GET /v2/anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404));
        h.add(Hostile.raw("body too large", "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\nConnection: close\r\n\r\n{", 413));
        return h;
    }

    @Test
    void afterAnAbuseRunTheServerIsHealthyIdleAndGivesTheSameGreedyOutput() throws Exception {
        String greedy = completionBody("In the beginning God", ",\"max_tokens\":24");
        String before = json(KJV.post("/v1/completions", greedy)).get("choices").get(0).get("text").asText();
        int port = KJV.server().port();

        // Clients that stall: headers never finished, a body never finished, nothing at all.
        List<Socket> stalled = new ArrayList<>();
        String[] stalls = {"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Le",
                "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"prompt\":", ""};
        for (int i = 0; i < 12; i++) {
            Socket s = new Socket("127.0.0.1", port);
            s.setSoTimeout(HANG_GUARD_MILLIS);
            s.getOutputStream().write(stalls[i % stalls.length].getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            stalled.add(s);
        }

        for (Hostile h : hostile()) {
            RawHttp.Response r = RawHttp.exchange(port, h.request(), HANG_GUARD_MILLIS);
            assertEquals(h.status(), r.status(), h.name() + ": " + RequestFuzzTest.abbreviate(r.body()));
            assertNull(RequestFuzzTest.problem(r), h.name() + ": " + RequestFuzzTest.abbreviate(r.body()));
        }

        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<String>> calls = new ArrayList<>();
            for (int i = 0; i < CONCURRENT; i++) {
                int n = i;
                calls.add(pool.submit(() -> concurrentCall(n, port)));
            }
            for (Future<String> f : calls) {
                String problem = f.get();
                assertNull(problem, problem);
            }
        }

        for (Socket s : stalled) {
            try (s) {
                InputStream in = s.getInputStream();
                RawHttp.Response r = RawHttp.read(in);
                assertTrue(r.status() == 0 || r.status() == 408 || r.status() == 400, "a stalled client gets closed: " + r);
                assertEquals(-1, in.read(), "the stalled connection is closed");
            }
        }

        assertEquals(200, KJV.get("/health").statusCode());
        Scrape after = Scrape.until(KJV.server(), HANG_GUARD_MILLIS, Scrape::idle);
        assertEquals(0, after.get("tandem_active_sequences"), after.text());
        assertEquals(0, after.get("tandem_queue_depth"), after.text());
        assertEquals(0, after.get("tandem_kv_blocks_in_use"), after.text());
        for (var e : after.samples().entrySet()) {
            if (e.getKey().startsWith("tandem_requests_total") && e.getKey().contains("status=\"5")) {
                assertEquals(0.0, e.getValue(), "no request counted as a server error: " + e.getKey());
            }
        }
        assertEquals(before, json(KJV.post("/v1/completions", greedy)).get("choices").get(0).get("text").asText(),
                "greedy output equals the one before the abuse");
    }

    /** Request {@code n} of the concurrent burst; returns what was wrong with its answer, or null. */
    static String concurrentCall(int n, int port) throws Exception {
        String prompt = LoadServerTest.PROMPTS[n % LoadServerTest.PROMPTS.length];
        String draft = n % 3 == 0 ? ",\"draft_model\":\"kjv-draft-q8_0\",\"speculative\":{\"n_max\":4,\"p_min\":0}" : "";
        switch (n % 8) {
            case 0, 1, 2 -> {
                RawHttp.Response r = RawHttp.exchange(port, RawHttp.request("POST", n % 2 == 0 ? "/v1/completions" : "/v1/chat/completions",
                        (n % 2 == 0 ? completionBody(prompt, ",\"max_tokens\":" + (8 + n % 16) + draft)
                                : chatBody(prompt, ",\"max_tokens\":" + (8 + n % 16) + draft)).getBytes(StandardCharsets.UTF_8),
                        "Content-Type", "application/json"), HANG_GUARD_MILLIS);
                return r.status() == 200 ? RequestFuzzTest.problem(r) : "request " + n + ": " + r.status() + " " + r.body();
            }
            case 3, 4 -> {
                RawHttp.Response r = RawHttp.exchange(port, RawHttp.request("POST", "/v1/completions",
                        completionBody(prompt, ",\"max_tokens\":12,\"stream\":true" + draft).getBytes(StandardCharsets.UTF_8),
                        "Content-Type", "application/json"), HANG_GUARD_MILLIS);
                return r.status() == 200 && r.body().contains("[DONE]") ? null : "stream " + n + ": " + r.status() + " " + r.body();
            }
            case 5 -> {
                // A streamed generation the client hangs up on after its first chunk.
                try (Socket s = new Socket("127.0.0.1", port)) {
                    s.setSoTimeout(HANG_GUARD_MILLIS);
                    s.getOutputStream().write(RawHttp.request("POST", "/v1/completions",
                            completionBody(prompt, ",\"max_tokens\":1000,\"ignore_eos\":true,\"stream\":true").getBytes(StandardCharsets.UTF_8),
                            "Content-Type", "application/json"));
                    s.getOutputStream().flush();
                    byte[] some = new byte[256];
                    if (s.getInputStream().read(some) <= 0) return "hang-up " + n + ": no first chunk";
                }
                return null;
            }
            case 6 -> {
                // A client that hangs up mid-body.
                try (Socket s = new Socket("127.0.0.1", port)) {
                    OutputStream out = s.getOutputStream();
                    out.write(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n"
                            + "{\"messages\":[{\"role\":\"user\",").getBytes(StandardCharsets.ISO_8859_1));
                    out.flush();
                }
                return null;
            }
            default -> {
                RawHttp.Response r = RawHttp.exchange(port, RawHttp.request("POST", "/v1/completions",
                        ("{\"prompt\":\"x\",\"max_tokens\":2,\"top_p\":1e-320}" + (n % 16 == 7 ? "" : "x")).getBytes(StandardCharsets.UTF_8),
                        "Content-Type", "application/json"), HANG_GUARD_MILLIS);
                return r.status() == 400 ? RequestFuzzTest.problem(r) : "malformed " + n + ": " + r.status() + " " + r.body();
            }
        }
    }
}
