package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

import static dev.tandem.server.ServerFixture.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defect 7 and the request limits: requests a hostile client sends get a 4xx OpenAI-style error (never
 * Jetty's HTML, never a 500), stalled connections are closed, and a client that hangs up mid-body is a
 * cancellation. The server runs with a 1 s idle timeout so that stalls end quickly; socket timeouts only bound hangs.
 */
class HostileRequestTest {
    static final int HANG_GUARD_MILLIS = 20_000;

    @RegisterExtension
    static final ServerFixture KJV = new ServerFixture(2, 8, o -> o.withMaxBodyBytes(64 * 1024).withIdleTimeout(Duration.ofSeconds(1)));

    private static JsonNode error(int status, String body) throws Exception {
        JsonNode error = JSON.readTree(body).get("error");
        assertNotNull(error, status + ": " + body);
        assertFalse(error.get("message").asText().isBlank(), body);
        assertTrue(error.has("type") && error.has("param") && error.has("code"), body);
        assertFalse(body.contains("\tat ") || body.contains("Exception"), "no stack trace or exception name: " + body);
        return error;
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "top_p that is 0 as a float   | {\"prompt\":\"x\",\"max_tokens\":2,\"top_p\":1e-320}                 | top_p",
            "temperature beyond float     | {\"prompt\":\"x\",\"max_tokens\":2,\"temperature\":1e39}             | temperature",
            "temperature beyond double    | {\"prompt\":\"x\",\"max_tokens\":2,\"temperature\":1e400}            | temperature",
            "stop string too long         | {\"prompt\":\"x\",\"max_tokens\":2,\"stop\":[\"%LONG%\"]}            | stop",
            "max_tokens over the context  | {\"prompt\":\"x\",\"max_tokens\":1025}               | max_tokens",
            "prompt token ids over the context | {\"prompt\":[%IDS%]}                            | prompt",
    })
    void fieldsThatSizeWorkAreCheckedAfterNarrowing(String name, String body, String param) throws Exception {
        body = body.replace("%LONG%", "y".repeat(RequestReader.MAX_STOP_CHARS + 1))
                .replace("%IDS%", "1,".repeat(1100) + "1");
        HttpResponse<String> r = KJV.post("/v1/completions", body);
        assertEquals(400, r.statusCode(), name + ": " + r.body());
        JsonNode e = error(400, r.body());
        assertEquals(param, e.get("param").asText(), r.body());
    }

    @Test
    void messageCountAndSizeAreLimited() throws Exception {
        String many = "{\"messages\":[" + "{\"role\":\"user\",\"content\":\"x\"},".repeat(RequestReader.MAX_MESSAGES) + "{\"role\":\"user\",\"content\":\"x\"}]}";
        try (OpenAiServer big = KJV.another(o -> o.withMaxBodyBytes(8L << 20))) {
            HttpResponse<String> r = post(big, "/v1/chat/completions", many);
            assertEquals(400, r.statusCode(), r.body());
            JsonNode e = error(400, r.body());
            assertEquals("messages", e.get("param").asText());
            assertTrue(e.get("message").asText().contains(Integer.toString(RequestReader.MAX_MESSAGES)), r.body());
            String huge = "{\"messages\":[{\"role\":\"user\",\"content\":\"" + "y".repeat(RequestReader.MAX_MESSAGE_CHARS + 1) + "\"}]}";
            r = post(big, "/v1/chat/completions", huge);
            assertEquals(400, r.statusCode(), r.body());
            e = error(400, r.body());
            assertEquals("messages[0].content", e.get("param").asText());
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "trailing garbage      | {\"prompt\":\"x\",\"max_tokens\":1} xyz",
            "a second value        | {\"prompt\":\"x\",\"max_tokens\":1}{\"prompt\":\"y\"}",
            "a BOM                 | \uFEFF{\"prompt\":\"x\",\"max_tokens\":1}",
    })
    void bodiesThatAreNotExactlyOneJsonObjectAre400(String name, String body) throws Exception {
        HttpResponse<String> r = KJV.post("/v1/completions", body);
        assertEquals(400, r.statusCode(), name + ": " + r.body());
        error(400, r.body());
    }

    @Test
    void utf16BodiesAre400() throws Exception {
        for (var charset : new java.nio.charset.Charset[] {StandardCharsets.UTF_16LE, StandardCharsets.UTF_16BE, StandardCharsets.UTF_16}) {
            byte[] body = "{\"prompt\":\"x\",\"max_tokens\":1}".getBytes(charset);
            RawHttp.Response r = RawHttp.exchange(KJV.server().port(),
                    RawHttp.request("POST", "/v1/completions", body, "Content-Type", "application/json"), HANG_GUARD_MILLIS);
            assertEquals(400, r.status(), charset + ": " + r.body());
            error(400, r.body());
        }
    }

    /** Errors Jetty raises before any route runs, and those of Javalin's routing, are JSON like the API's own. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "bad URI encoding      | GET /v1/%zz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n                  | 400",
            "URI too long          | GET /v1/%PATH% HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n              | 414",
            "header too large      | GET /health HTTP/1.1\\r\\nHost: x\\r\\nX-Big: %HEADER%\\r\\nConnection: close\\r\\n\\r\\n | 431",
            "header without colon  | GET /health HTTP/1.1\\r\\nHost: x\\r\\nno colon here\\r\\nConnection: close\\r\\n\\r\\n | 400",
            "bad request line      | HELLO\\r\\n\\r\\n                                                                    | 400",
            "bad HTTP version      | GET /health HTTP/7.3\\r\\nHost: x\\r\\n\\r\\n                                     | 400",
            "HTTP/2 request line   | GET /health HTTP/2.0\\r\\nHost: x\\r\\n\\r\\n                                     | 426",
            "unknown method        | BREW /v1/models HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n               | 405",
            "wrong method          | DELETE /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n         | 405",
            "unknown path          | GET /nothing/here HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n             | 404",
            "body too large        | POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 100000000\\r\\nConnection: close\\r\\n\\r\\n{ | 413",
            "bad Content-Length    | POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: -5\\r\\nConnection: close\\r\\n\\r\\n | 400",
            "two Content-Lengths   | POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 2\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\n{} | 400",
    })
    void everyHttpErrorIsOpenAiJson(String name, String request, int status) throws Exception {
        request = request.replace("\\r\\n", "\r\n").replace("%PATH%", "a".repeat(100_000)).replace("%HEADER%", "h".repeat(100_000));
        RawHttp.Response r = RawHttp.exchange(KJV.server().port(), request, HANG_GUARD_MILLIS);
        assertEquals(status, r.status(), name + ": " + r.body());
        assertTrue(r.header("content-type") != null && r.header("content-type").startsWith("application/json"), name + ": " + r.headers());
        error(status, r.body());
        assertEquals(200, KJV.get("/health").statusCode(), "the server keeps serving");
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "headers never finished | POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nContent-Le",
            "body never finished    | POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: 100\\r\\n\\r\\n{\"prompt\":",
            "nothing after connect  | ",
    })
    void aStalledConnectionIsClosed(String name, String request) throws Exception {
        try (Socket s = new Socket("127.0.0.1", KJV.server().port())) {
            s.setSoTimeout(HANG_GUARD_MILLIS);
            OutputStream out = s.getOutputStream();
            if (request != null) out.write(request.replace("\\r\\n", "\r\n").getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            InputStream in = s.getInputStream();
            // The server answers (408 or 400) and closes, or just closes; a read that times out is the failure.
            RawHttp.Response r = RawHttp.read(in);
            assertTrue(r.status() == 0 || r.status() == 408 || r.status() == 400, name + ": " + r);
            if (r.status() != 0) error(r.status(), r.body());
            assertEquals(-1, in.read(), name + ": the connection is closed");
        }
    }

    /**
     * A client that trickles its headers or body a byte at a time, each byte well within the idle timeout, is
     * still cut off: headers have a deadline of one to two idle timeouts, a body a minimum rate. The loop is bounded.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "headers | POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: " + "a",
            "body    | POST /v1/completions HTTP/1.1\\r\\nHost: x\\r\\nContent-Type: application/json\\r\\nContent-Length: 100000\\r\\n\\r\\n{",
    })
    void aClientThatTricklesIsCutOff(String name, String start) throws Exception {
        try (Socket s = new Socket("127.0.0.1", KJV.server().port())) {
            s.setSoTimeout(300);
            OutputStream out = s.getOutputStream();
            out.write(start.replace("\\r\\n", "\r\n").getBytes(StandardCharsets.ISO_8859_1));
            boolean cut = false;
            for (int i = 0; i < 100 && !cut; i++) {          // 100 bytes, one each 300 ms: 30 s at most
                try {
                    out.write(name.equals("body") ? ' ' : 'a');
                    out.flush();
                    int b = s.getInputStream().read();
                    cut = b == -1 || b == 'H';               // closed, or an answer ("HTTP/1.1 408 ...")
                } catch (java.net.SocketTimeoutException stillOpen) {
                    // the server is still waiting for more: go on trickling
                } catch (java.io.IOException reset) {
                    cut = true;
                }
            }
            assertTrue(cut, name + ": the server never cut off a client sending a byte every 300 ms");
        }
    }

    /**
     * The idle timeout (1 s here) closes connections that stall while sending, not those waiting for an answer:
     * three long non-streamed generations on two batch slots, the third waiting for the others, all complete.
     */
    @Test
    void answersThatTakeLongerThanTheIdleTimeoutStillArrive() throws Exception {
        String body = completionBody("And the LORD said", ",\"max_tokens\":600,\"ignore_eos\":true");
        List<CompletableFuture<HttpResponse<String>>> calls = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            calls.add(HTTP.sendAsync(java.net.http.HttpRequest.newBuilder(KJV.uri("/v1/completions"))
                    .POST(java.net.http.HttpRequest.BodyPublishers.ofString(body)).header("Content-Type", "application/json").build(),
                    HttpResponse.BodyHandlers.ofString()));
        }
        for (CompletableFuture<HttpResponse<String>> c : calls) {
            HttpResponse<String> r = c.get(HANG_GUARD_MILLIS * 3, java.util.concurrent.TimeUnit.MILLISECONDS);
            assertEquals(200, r.statusCode(), r.body());
            assertEquals(600, json(r).get("usage").get("completion_tokens").asInt());
        }
    }

    @Test
    void aClientHangingUpMidBodyIsACancellationNotA500() throws Exception {
        Scrape before = Scrape.of(KJV.server());
        String series500 = "tandem_requests_total{endpoint=\"/v1/completions\",status=\"500\"}";
        String series499 = "tandem_requests_total{endpoint=\"/v1/completions\",status=\"499\"}";
        try (Socket s = new Socket("127.0.0.1", KJV.server().port())) {
            s.getOutputStream().write(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    + "Content-Length: 1000\r\n\r\n{\"prompt\":\"In the").getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().flush();
            Thread.sleep(200);
        }
        Scrape after = Scrape.until(KJV.server(), HANG_GUARD_MILLIS, sc -> sc.get(series499) > before.get(series499) || sc.get(series500) > before.get(series500));
        assertEquals(before.get(series500), after.get(series500), "not counted as a 500:\n" + after.text());
        assertEquals(before.get(series499) + 1, after.get(series499), "counted as a client that closed the request:\n" + after.text());
    }

    /**
     * Keys that differ from the right one only in case, on one keep-alive connection: Jetty's header cache once
     * matched them ignoring case, so a wrong key sent after the right one was read as the right one, and the other
     * way round.
     */
    @Test
    void onAKeepAliveConnectionEachRequestsOwnKeyIsChecked() throws Exception {
        try (OpenAiServer keyed = KJV.another(o -> o.withApiKey("sesame"));
             Socket s = new Socket("127.0.0.1", keyed.port())) {
            s.setSoTimeout(HANG_GUARD_MILLIS);
            String body = completionBody("And", ",\"max_tokens\":1");
            for (String key : new String[] {"sesame", "SESAME", "sesame", "Sesame", "SESAME", "sesame"}) {
                String request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer " + key
                        + "\r\nContent-Length: " + body.length() + "\r\n\r\n" + body;
                s.getOutputStream().write(request.getBytes(StandardCharsets.ISO_8859_1));
                s.getOutputStream().flush();
                RawHttp.Response r = RawHttp.read(s.getInputStream());
                assertEquals(key.equals("sesame") ? 200 : 401, r.status(), "key " + key + ": " + r.body());
            }
        }
    }

    @Test
    void theApiKeyIsStillCheckedAndAWrongOneOfAnyLengthIsRefused() throws Exception {
        try (OpenAiServer keyed = KJV.another(o -> o.withApiKey("sesame"))) {
            byte[] body = completionBody("And", ",\"max_tokens\":1").getBytes(StandardCharsets.UTF_8);
            for (String wrong : new String[] {"", "s", "sesam", "sesame!", "SESAME", "x".repeat(300)}) {
                RawHttp.Response r = RawHttp.exchange(keyed.port(), RawHttp.request("POST", "/v1/completions", body,
                        "Content-Type", "application/json", "Authorization", "Bearer " + wrong), HANG_GUARD_MILLIS);
                assertEquals(401, r.status(), wrong);
                assertEquals("invalid_api_key", error(401, r.body()).get("code").asText());
            }
            RawHttp.Response right = RawHttp.exchange(keyed.port(), RawHttp.request("POST", "/v1/completions", body,
                    "Content-Type", "application/json", "Authorization", "Bearer sesame"), HANG_GUARD_MILLIS);
            assertEquals(200, right.status(), right.body());
        }
    }
}
