package dev.tandem.server;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;

/**
 * Seeded hostile HTTP requests for the OpenAI routes: a valid request with one field given a hostile value
 * (wrong type, huge or tiny number, NaN-like text, deep nesting, long or odd strings), malformed JSON (cut,
 * flipped bytes, garbage around it), odd headers (content types, lengths, encodings), and bad methods and paths.
 * Every request asks for {@code Connection: close}. Valid bodies generate at most a few tokens, so a case that
 * happens to be a good request stays cheap.
 */
final class RequestFuzzer {
    /** One request and what it is, for the failure message. */
    record Case(int index, String kind, byte[] request) {
        String shown() {
            String s = new String(request, StandardCharsets.ISO_8859_1);
            return index + " " + kind + ": " + (s.length() > 600 ? s.substring(0, 600) + "... (" + s.length() + " bytes)" : s);
        }
    }

    /** Writes nesting deeper than Jackson's default 1000 levels: the server must refuse it, not the fuzzer. */
    private static final ObjectMapper JSON = new ObjectMapper(com.fasterxml.jackson.core.JsonFactory.builder()
            .streamWriteConstraints(com.fasterxml.jackson.core.StreamWriteConstraints.builder().maxNestingDepth(100_000).build()).build());
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final List<String> FIELDS = List.of("prompt", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
            "top_k", "min_p", "seed", "stop", "stream", "stream_options", "n", "model", "draft_model", "speculative", "ignore_eos");
    private static final List<String> SPECULATIVE = List.of("enabled", "draft_model", "n_max", "n_min", "p_min", "adaptive");
    private static final List<String> PATHS = List.of("/v1/completions", "/v1/chat/completions");
    private static final List<String> RAW_NUMBERS = List.of("1e400", "-1e400", "1e-320", "-0", "0.0", "2147483648", "-2147483649",
            "9223372036854775808", "123456789012345678901234567890", "1" + "0".repeat(2000), "0." + "0".repeat(1500) + "1", "1.5", "-1",
            "NaN", "Infinity", "-Infinity", "0x10", "01", "+1", ".5", "1e", "--1");

    private final Random random;
    private int index;

    RequestFuzzer(long seed) {
        this.random = new Random(seed);
    }

    Case next() {
        int i = index++;
        return switch (random.nextInt(10)) {
            case 0, 1, 2, 3 -> fieldCase(i);
            case 4 -> rawNumberCase(i);
            case 5, 6 -> malformedJsonCase(i);
            case 7, 8 -> headerCase(i);
            default -> methodAndPathCase(i);
        };
    }

    private <T> T pick(List<T> list) { return list.get(random.nextInt(list.size())); }

    /** A valid request for {@code path}, greedy, two tokens. */
    private ObjectNode valid(String path) {
        ObjectNode o = NODES.objectNode();
        if (path.endsWith("chat/completions")) {
            o.putArray("messages").addObject().put("role", "user").put("content", "Who made the heaven?");
        } else {
            o.put("prompt", "In the beginning");
        }
        o.put("max_tokens", 2);
        o.put("temperature", 0);
        return o;
    }

    /** A hostile JSON value: wrong types, extreme numbers, long or odd strings, deep nesting. */
    private JsonNode hostileValue() {
        return switch (random.nextInt(16)) {
            case 0 -> NODES.nullNode();
            case 1 -> NODES.booleanNode(random.nextBoolean());
            case 2 -> NODES.textNode(pick(List.of("", "x", "NaN", "1", "ngram", "kjv-draft-q8_0", "\u0000", "\uD800", "é\u202Ežs")));
            case 3 -> NODES.textNode("w".repeat(random.nextInt(70_000)));
            case 4 -> NODES.numberNode(pick(List.of(0, -1, 1, 2, 3, 32, 33, 1025, Integer.MAX_VALUE, Integer.MIN_VALUE)));
            case 5 -> NODES.numberNode(pick(List.of(Long.MAX_VALUE, Long.MIN_VALUE, 1L << 40)));
            case 6 -> NODES.numberNode(pick(List.of(1e-320, 1e39, -0.0, 0.5, 1.0000001, Double.MAX_VALUE, Double.MIN_VALUE, 1e308)));
            case 7 -> NODES.numberNode(new java.math.BigInteger("9".repeat(1 + random.nextInt(60))));
            case 8 -> NODES.arrayNode();
            case 9 -> {
                ArrayNode a = NODES.arrayNode();
                int n = random.nextInt(40);
                for (int k = 0; k < n; k++) a.add(random.nextBoolean() ? NODES.textNode("s" + k) : NODES.numberNode(random.nextInt(100_000)));
                yield a;
            }
            case 10 -> NODES.objectNode();
            case 11 -> {
                ArrayNode a = NODES.arrayNode();
                int n = 1 + random.nextInt(3000);
                for (int k = 0; k < n; k++) a.addObject().put("role", pick(List.of("user", "system", "assistant", "tool", ""))).put("content", "x");
                yield a;
            }
            case 12 -> {
                JsonNode deep = NODES.numberNode(1);
                int depth = 1 + random.nextInt(1500);
                for (int k = 0; k < depth; k++) deep = random.nextBoolean() ? NODES.arrayNode().add(deep) : NODES.objectNode().set("a", deep);
                yield deep;
            }
            case 13 -> {
                ArrayNode parts = NODES.arrayNode();
                parts.addObject().put("type", pick(List.of("text", "image_url", ""))).put("text", "hi");
                yield parts;
            }
            case 14 -> {
                ObjectNode spec = NODES.objectNode();
                spec.set(pick(SPECULATIVE), random.nextBoolean() ? NODES.numberNode(random.nextInt(200_000) - 100) : NODES.textNode("x"));
                yield spec;
            }
            default -> {
                ArrayNode a = NODES.arrayNode();
                int n = random.nextInt(40);
                for (int k = 0; k < n; k++) a.add("s".repeat(random.nextInt(400)));
                yield a;
            }
        };
    }

    private Case fieldCase(int i) {
        String path = pick(PATHS);
        ObjectNode body = valid(path);
        int fields = 1 + random.nextInt(3);
        for (int k = 0; k < fields; k++) {
            String field = pick(FIELDS);
            JsonNode v = hostileValue();
            // A null or absent max_tokens means "to the end of the context": valid, but a thousand tokens long.
            if ((field.equals("max_tokens") || field.equals("max_completion_tokens")) && (v.isNull() || v.isIntegralNumber() && v.asLong() > 4 && v.asLong() <= 1024)) {
                v = NODES.numberNode(3);
            }
            if (field.equals("messages") && v.isArray() && v.size() > 0 && v.get(0).isObject() && random.nextBoolean()) {
                ((ObjectNode) v.get(0)).set("content", hostileValue());
            }
            body.set(field, v);
        }
        return new Case(i, "field", post(path, bytes(body), "application/json"));
    }

    /** A number JSON writers never produce, spliced in as text. */
    private Case rawNumberCase(int i) {
        String path = pick(PATHS);
        String field = pick(List.of("temperature", "top_p", "min_p", "top_k", "seed", "max_tokens", "n"));
        String number = pick(RAW_NUMBERS);
        ObjectNode body = valid(path);
        body.remove(field);
        String text = bytesText(body);
        text = text.substring(0, text.length() - 1) + ",\"" + field + "\":" + number + "}";
        return new Case(i, "number " + field + "=" + (number.length() > 20 ? number.substring(0, 20) + "..." : number),
                post(path, text.getBytes(StandardCharsets.UTF_8), "application/json"));
    }

    private Case malformedJsonCase(int i) {
        String path = pick(PATHS);
        byte[] valid = bytes(valid(path));
        byte[] b;
        String kind;
        switch (random.nextInt(7)) {
            case 0 -> {
                b = java.util.Arrays.copyOf(valid, random.nextInt(valid.length));
                kind = "cut";
            }
            case 1 -> {
                b = valid.clone();
                for (int k = 0; k < 1 + random.nextInt(4); k++) b[random.nextInt(b.length)] = (byte) random.nextInt(256);
                kind = "flipped bytes";
            }
            case 2 -> {
                b = concat(valid, pick(List.of("x", "}", "{}", " ,", "\u0000", "[1]", "\"")).getBytes(StandardCharsets.UTF_8));
                kind = "trailing data";
            }
            case 3 -> {
                b = concat(pick(List.of("\uFEFF", "x", ")]}'\n", "\u0000")).getBytes(StandardCharsets.UTF_8), valid);
                kind = "leading data";
            }
            case 4 -> {
                b = new String(valid, StandardCharsets.UTF_8).getBytes(pick(List.of(StandardCharsets.UTF_16, StandardCharsets.UTF_16LE,
                        StandardCharsets.UTF_16BE, java.nio.charset.Charset.forName("UTF-32"))));
                kind = "UTF-16/32";
            }
            case 5 -> {
                b = pick(List.of("", " ", "null", "[]", "1", "\"x\"", "{", "{\"prompt\":}", "{'prompt':'x'}", "{\"prompt\":\"x\",}",
                        "{\"prompt\":\"x\" \"max_tokens\":1}", "{\"prompt\":\"\\ud800\"}", "{\"prompt\":\"\\x41\"}", "{\"a\":" + "[".repeat(5000)))
                        .getBytes(StandardCharsets.UTF_8);
                kind = "not an object";
            }
            default -> {
                b = new byte[1 + random.nextInt(2000)];
                random.nextBytes(b);
                kind = "random bytes";
            }
        }
        return new Case(i, "json " + kind, post(path, b, "application/json"));
    }

    private Case headerCase(int i) {
        String path = pick(PATHS);
        byte[] body = bytes(valid(path));
        String head = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n";
        String kind;
        byte[] tail = body;
        switch (random.nextInt(12)) {
            case 0 -> {
                head += "Content-Type: " + pick(List.of("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                        "application/json; charset=utf-16", "", "\u00ff\u00fe")) + "\r\nContent-Length: " + body.length + "\r\n";
                kind = "content type";
            }
            case 1 -> {
                head += "Content-Length: " + pick(List.of("-1", "abc", "99999999999999999999", "1 2", "0x10", "")) + "\r\n";
                kind = "bad length";
            }
            case 2 -> {
                head += "Content-Length: " + body.length + "\r\nContent-Length: " + (body.length + 1) + "\r\n";
                kind = "two lengths";
            }
            case 3 -> {
                head += "Transfer-Encoding: chunked\r\n";
                tail = pick(List.of("zz\r\nab\r\n0\r\n\r\n", "5\r\nab\r\n0\r\n\r\n", "1;" + "x".repeat(9000) + "\r\n{\r\n0\r\n\r\n",
                        Integer.toHexString(body.length) + "\r\n" + new String(body, StandardCharsets.UTF_8) + "\r\n0\r\n\r\n"))
                        .getBytes(StandardCharsets.ISO_8859_1);
                kind = "chunked";
            }
            case 4 -> {
                head += "Transfer-Encoding: chunked\r\nContent-Length: " + body.length + "\r\n";
                kind = "chunked and a length";
            }
            case 5 -> {
                head += "X-Big: " + "h".repeat(4000 + random.nextInt(20_000)) + "\r\nContent-Length: " + body.length + "\r\n";
                kind = "big header";
            }
            case 6 -> {
                head += "Bad Header Without Colon\r\nContent-Length: " + body.length + "\r\n";
                kind = "no colon";
            }
            case 7 -> {
                head += "X-Odd: \u00e9\u0001\u007f\r\nContent-Length: " + body.length + "\r\n";
                kind = "control bytes";
            }
            case 8 -> {
                String expect = pick(List.of("100-continue", "nothing"));
                // An expectation the server refuses (417) is answered before the body is read, and the connection closed:
                // a body already sent then sits unread, the server's close resets it, and the reset can reach the
                // client before the answer. So that refusal is asked without a body; the race is TCP's, not the server's.
                if (!expect.equals("100-continue")) tail = new byte[0];
                head += "Expect: " + expect + "\r\nContent-Length: " + tail.length + "\r\n";
                kind = "expect";
            }
            case 9 -> {
                head += "Authorization: " + pick(List.of("Bearer", "Basic xyz", "Bearer " + "k".repeat(3000), "")) + "\r\nContent-Length: " + body.length + "\r\n";
                kind = "authorization";
            }
            case 10 -> {
                head += "Content-Encoding: " + pick(List.of("gzip", "br", "deflate", "x")) + "\r\nContent-Length: " + body.length + "\r\n";
                kind = "content encoding";
            }
            default -> {
                StringBuilder many = new StringBuilder();
                for (int k = 0; k < 200 + random.nextInt(400); k++) many.append("X-H").append(k).append(": v\r\n");
                head += many + "Content-Length: " + body.length + "\r\n";
                kind = "many headers";
            }
        }
        return new Case(i, "header " + kind, concat((head + "\r\n").getBytes(StandardCharsets.ISO_8859_1), tail));
    }

    private Case methodAndPathCase(int i) {
        String method = pick(List.of("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW", "get", "CONNECT", "G\u00c9T", "POST\tX"));
        String path = pick(List.of("/v1/completions", "/v1/chat/completions", "/v1/models", "/health", "/metrics", "/", "//v1//models",
                "/v1/../v1/models", "/v1/%2e%2e/health", "/%00", "/v1/completions?x=%zz", "/v1/models/" + "a".repeat(random.nextInt(12_000)),
                "*", "http://evil.example/v1/models", "/v1/\u00e9", "/v1/models#frag", "/v1/completions;jsessionid=1", "/v1/embeddings"));
        String version = pick(List.of("HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1x", ""));
        boolean post = method.equals("POST");
        byte[] body = post ? bytes(valid(path.contains("chat") ? "/v1/chat/completions" : "/v1/completions")) : null;
        StringBuilder h = new StringBuilder(method).append(' ').append(path).append(version.isEmpty() ? "" : " " + version)
                .append("\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        if (body != null) h.append("Content-Type: application/json\r\nContent-Length: ").append(body.length).append("\r\n");
        h.append("\r\n");
        byte[] head = h.toString().getBytes(StandardCharsets.ISO_8859_1);
        return new Case(i, "method/path", body == null ? head : concat(head, body));
    }

    private static byte[] post(String path, byte[] body, String contentType) {
        return RawHttp.request("POST", path, body, "Content-Type", contentType);
    }

    private static byte[] bytes(JsonNode node) {
        try {
            return JSON.writeValueAsBytes(node);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static String bytesText(JsonNode node) {
        return new String(bytes(node), StandardCharsets.UTF_8);
    }

    private static byte[] concat(byte[] a, byte[] b) {
        ByteArrayOutputStream out = new ByteArrayOutputStream(a.length + b.length);
        out.writeBytes(a);
        out.writeBytes(b);
        return out.toByteArray();
    }
}
