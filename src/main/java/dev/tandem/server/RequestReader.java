package dev.tandem.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectReader;
import dev.tandem.decode.DraftPolicy;
import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.SamplingSettings;
import dev.tandem.tokenizer.ChatMessage;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Reads the JSON body of {@code /v1/chat/completions} and {@code /v1/completions} into a
 * {@link GenerationRequest}, checking every field's type and range; each failure names the field.
 *
 * <p>Sampling defaults are llama.cpp's (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05); a request without
 * {@code seed} gets a random one. Speculation: {@code draft_model} (LM Studio) or a {@code speculative} object
 * ({@code enabled}, {@code draft_model}, {@code n_max}, {@code n_min}, {@code p_min}, {@code adaptive}).
 */
final class RequestReader {
    /** A parsed request and how to answer it. */
    record Parsed(GenerationRequest request, boolean stream, boolean includeUsage) {}

    /** Most chat messages in one request. */
    static final int MAX_MESSAGES = 1024;
    /** Most characters in one message's content (the body limit bounds their sum). */
    static final int MAX_MESSAGE_CHARS = 1 << 20;
    /** Most stop strings, and most characters in one. */
    static final int MAX_STOPS = 16, MAX_STOP_CHARS = 256;

    private final ObjectMapper json;
    private final ObjectReader objectReader;

    RequestReader(ObjectMapper json) {
        this.json = json;
        this.objectReader = json.readerFor(JsonNode.class).with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);
    }

    /**
     * The body as one JSON object: UTF-8 without a byte order mark (JSON text exchanged between systems is UTF-8,
     * RFC 8259), nothing but whitespace after the object. Jackson alone would guess UTF-16 or UTF-32 from the
     * first bytes and ignore what follows the first value.
     */
    JsonNode parse(byte[] body) {
        if (body.length == 0) throw ApiException.invalid("the request body is empty; send a JSON object", null);
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(body)).toString();
        } catch (CharacterCodingException e) {
            throw ApiException.invalid("the request body is not UTF-8; send a JSON object in UTF-8", null);
        }
        if (text.startsWith("\uFEFF")) throw ApiException.invalid("the request body starts with a byte order mark; send UTF-8 JSON without one", null);
        if (text.indexOf('\0') >= 0) throw ApiException.invalid("the request body contains NUL bytes (UTF-16 or UTF-32?); send a JSON object in UTF-8", null);
        JsonNode root;
        try {
            root = objectReader.readValue(text);
        } catch (JsonProcessingException e) {
            throw ApiException.invalid("the request body is not one valid JSON value: " + e.getOriginalMessage(), null);
        }
        if (root == null || !root.isObject()) throw ApiException.invalid("the request body must be a JSON object", null);
        return root;
    }

    Parsed chat(JsonNode root) {
        JsonNode messages = root.get("messages");
        if (messages == null || messages.isNull()) throw ApiException.invalid("'messages' is required", "messages");
        if (!messages.isArray()) throw ApiException.invalid("'messages' must be an array of {role, content} objects", "messages");
        if (messages.isEmpty()) throw ApiException.invalid("'messages' must not be empty", "messages");
        if (messages.size() > MAX_MESSAGES) {
            throw ApiException.invalid("at most " + MAX_MESSAGES + " messages, got " + messages.size(), "messages");
        }
        List<ChatMessage> list = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            JsonNode m = messages.get(i);
            String where = "messages[" + i + "]";
            if (!m.isObject()) throw ApiException.invalid(where + " must be an object", where);
            JsonNode role = m.get("role");
            if (role == null || !role.isTextual()) throw ApiException.invalid(where + ".role must be a string", where + ".role");
            list.add(new ChatMessage(role.asText(), content(m.get("content"), where + ".content")));
        }
        GenerationRequest.Builder b = GenerationRequest.builder().messages(list);
        return common(root, b, true);
    }

    Parsed completion(JsonNode root) {
        JsonNode prompt = root.get("prompt");
        if (prompt == null || prompt.isNull()) throw ApiException.invalid("'prompt' is required", "prompt");
        GenerationRequest.Builder b = GenerationRequest.builder();
        if (prompt.isTextual()) {
            b.prompt(prompt.asText());
        } else if (prompt.isArray() && prompt.size() == 1 && prompt.get(0).isTextual()) {
            b.prompt(prompt.get(0).asText());
        } else if (prompt.isArray() && !prompt.isEmpty() && allInts(prompt)) {
            int[] ids = new int[prompt.size()];
            for (int i = 0; i < ids.length; i++) ids[i] = prompt.get(i).asInt();
            b.promptTokens(ids);
        } else {
            throw ApiException.invalid("'prompt' must be a string, a list of one string, or a list of token ids", "prompt");
        }
        return common(root, b, false);
    }

    private static boolean allInts(JsonNode array) {
        for (JsonNode n : array) if (!n.isIntegralNumber() || !n.canConvertToInt()) return false;
        return true;
    }

    /** A message's content: a string, or a list of {"type":"text","text":...} parts. */
    private static String content(JsonNode c, String where) {
        if (c == null || c.isNull()) return "";
        if (c.isTextual()) return checkLength(c.asText(), where);
        if (c.isArray()) {
            StringBuilder text = new StringBuilder();
            for (JsonNode part : c) {
                if (!part.isObject() || !"text".equals(part.path("type").asText()) || !part.path("text").isTextual()) {
                    throw ApiException.invalid(where + " parts must be {\"type\":\"text\",\"text\":...}; other kinds are not supported", where);
                }
                text.append(part.get("text").asText());
                checkLength(text, where);
            }
            return text.toString();
        }
        throw ApiException.invalid(where + " must be a string or a list of text parts", where);
    }

    private static <T extends CharSequence> T checkLength(T content, String where) {
        if (content.length() > MAX_MESSAGE_CHARS) {
            throw ApiException.invalid(where + " has more than " + MAX_MESSAGE_CHARS + " characters", where);
        }
        return content;
    }

    private Parsed common(JsonNode root, GenerationRequest.Builder b, boolean chat) {
        String model = string(root, "model");
        if (model != null && !model.isEmpty()) b.model(model);
        Integer n = integer(root, "n");
        if (n != null && n != 1) throw ApiException.invalid("only n = 1 is supported, got " + n, "n");
        Integer maxTokens = integer(root, "max_tokens");
        String maxParam = "max_tokens";
        Integer maxCompletion = integer(root, "max_completion_tokens");
        if (maxCompletion != null) {
            maxTokens = maxCompletion;
            maxParam = "max_completion_tokens";
        }
        if (maxTokens != null) {
            if (maxTokens == -1 && !chat) maxTokens = 0;      // llama.cpp's "no limit"
            else if (maxTokens <= 0) throw ApiException.invalid("'" + maxParam + "' must be at least 1, got " + maxTokens, maxParam);
            b.maxTokens(maxTokens);
        }
        Long seed = longValue(root, "seed");
        SamplingSettings s = SamplingSettings.defaults(seed != null ? seed : ThreadLocalRandom.current().nextLong());
        // Ranges are SamplingSettings' to check (400s naming the field), as the floats the samplers use.
        Double temperature = number(root, "temperature");
        if (temperature != null) s = s.withTemperature(temperature);
        Double topP = number(root, "top_p");
        if (topP != null) s = s.withTopP(topP);
        Integer topK = integer(root, "top_k");
        if (topK != null) s = s.withTopK(topK);
        Double minP = number(root, "min_p");
        if (minP != null) s = s.withMinP(minP);
        b.sampling(s);
        b.stop(stops(root.get("stop")));
        Boolean ignoreEos = bool(root, "ignore_eos");
        if (ignoreEos != null) b.ignoreEndOfGeneration(ignoreEos);
        b.draft(draft(root));
        Boolean stream = bool(root, "stream");
        boolean includeUsage = false;
        JsonNode options = root.get("stream_options");
        if (options != null && !options.isNull()) {
            if (!options.isObject()) throw ApiException.invalid("'stream_options' must be an object", "stream_options");
            Boolean u = bool(options, "include_usage");
            includeUsage = u != null && u;
        }
        return new Parsed(b.build(), stream != null && stream, includeUsage);
    }

    private static List<String> stops(JsonNode stop) {
        if (stop == null || stop.isNull()) return List.of();
        List<String> out = new ArrayList<>();
        if (stop.isTextual()) out.add(stop.asText());
        else if (stop.isArray()) {
            for (JsonNode s : stop) {
                if (!s.isTextual()) throw ApiException.invalid("'stop' must be a string or a list of strings", "stop");
                out.add(s.asText());
            }
        } else {
            throw ApiException.invalid("'stop' must be a string or a list of strings", "stop");
        }
        for (String s : out) {
            if (s.isEmpty()) throw ApiException.invalid("'stop' strings must not be empty", "stop");
            if (s.length() > MAX_STOP_CHARS) throw ApiException.invalid("'stop' strings have at most " + MAX_STOP_CHARS + " characters, got " + s.length(), "stop");
        }
        if (out.size() > MAX_STOPS) throw ApiException.invalid("at most " + MAX_STOPS + " stop strings, got " + out.size(), "stop");
        return out;
    }

    /** {@code draft_model} at the top level (LM Studio), refined or overridden by a {@code speculative} object. */
    private static DraftSettings draft(JsonNode root) {
        String top = string(root, "draft_model");
        JsonNode spec = root.get("speculative");
        if (spec != null && !spec.isNull() && !spec.isObject()) throw ApiException.invalid("'speculative' must be an object", "speculative");
        String name = top;
        boolean enabled = top != null && !top.isEmpty();
        int max = DraftSettings.DEFAULT_MAX, min = DraftSettings.DEFAULT_MIN;
        double pMin = DraftSettings.DEFAULT_P_MIN;
        boolean adaptive = false;
        if (spec != null && spec.isObject()) {
            String inner = string(spec, "draft_model", "speculative.draft_model");
            if (inner != null && !inner.isEmpty()) {
                name = inner;
                enabled = true;
            }
            Boolean on = bool(spec, "enabled", "speculative.enabled");
            if (on != null) enabled = on;
            // Ranges are checked whenever a value is given, even with speculation off: a bad value is a bad request.
            Integer nMax = integer(spec, "n_max", "speculative.n_max");
            if (nMax != null) {
                if (nMax < 1 || nMax > DraftPolicy.MAX_DRAFT) {
                    throw ApiException.invalid("'speculative.n_max' must be in [1, " + DraftPolicy.MAX_DRAFT + "], got " + nMax, "speculative.n_max");
                }
                max = nMax;
            }
            Integer nMin = integer(spec, "n_min", "speculative.n_min");
            if (nMin != null) {
                if (nMin < 0) throw ApiException.invalid("'speculative.n_min' must be at least 0, got " + nMin, "speculative.n_min");
                min = nMin;
            }
            Double p = number(spec, "p_min", "speculative.p_min");
            if (p != null) {
                if (!(p >= 0 && p <= 1)) throw ApiException.invalid("'speculative.p_min' must be in [0, 1], got " + p, "speculative.p_min");
                pMin = p;
            }
            Boolean a = bool(spec, "adaptive", "speculative.adaptive");
            if (a != null) adaptive = a;
        }
        if (min > max) throw ApiException.invalid("'speculative.n_min' must be in [0, n_max = " + max + "], got " + min, "speculative.n_min");
        if (!enabled) return DraftSettings.off();
        DraftSettings.Mode mode = "ngram".equals(name) ? DraftSettings.Mode.NGRAM : DraftSettings.Mode.MODEL;
        return new DraftSettings(mode, mode == DraftSettings.Mode.NGRAM ? null : name, max, min, pMin, adaptive);
    }

    // Typed field access: absent or null is "not given"; a value of the wrong type is a 400 naming the field.

    private static String string(JsonNode o, String name) { return string(o, name, name); }

    private static String string(JsonNode o, String name, String param) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isTextual()) throw ApiException.invalid("'" + param + "' must be a string", param);
        return v.asText();
    }

    private static Integer integer(JsonNode o, String name) { return integer(o, name, name); }

    private static Integer integer(JsonNode o, String name, String param) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber()) throw ApiException.invalid("'" + param + "' must be an integer", param);
        if (!v.canConvertToInt()) throw ApiException.invalid("'" + param + "' is out of range: " + v.asText(), param);
        return v.intValue();
    }

    private static Long longValue(JsonNode o, String name) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw ApiException.invalid("'" + name + "' must be a 64-bit integer", name);
        return v.longValue();
    }

    private static Double number(JsonNode o, String name) { return number(o, name, name); }

    private static Double number(JsonNode o, String name, String param) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isNumber()) throw ApiException.invalid("'" + param + "' must be a number", param);
        if (!Double.isFinite(v.doubleValue())) throw ApiException.invalid("'" + param + "' is out of range: " + v.asText(), param);
        return v.doubleValue();
    }

    private static Boolean bool(JsonNode o, String name) { return bool(o, name, name); }

    private static Boolean bool(JsonNode o, String name, String param) {
        JsonNode v = o.get(name);
        if (v == null || v.isNull()) return null;
        if (!v.isBoolean()) throw ApiException.invalid("'" + param + "' must be true or false", param);
        return v.booleanValue();
    }

}
