package dev.tandem.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationStats;
import dev.tandem.engine.ModelInfo;

import java.util.List;

/** The OpenAI response shapes: completions, chat completions, their stream chunks, model lists, errors. */
final class ResponseJson {
    private final ObjectMapper json;

    ResponseJson(ObjectMapper json) {
        this.json = json;
    }

    ObjectNode error(String message, String type, String param, String code) {
        ObjectNode root = json.createObjectNode();
        ObjectNode e = root.putObject("error");
        e.put("message", message);
        e.put("type", type);
        e.put("param", param);
        e.put("code", code);
        return root;
    }

    /** {@link #error} as text. */
    String errorText(String message, String type, String param, String code) throws JsonProcessingException {
        return json.writeValueAsString(error(message, type, param, code));
    }

    ObjectNode models(List<ModelInfo> models, long created) {
        ObjectNode root = json.createObjectNode();
        root.put("object", "list");
        ArrayNode data = root.putArray("data");
        for (ModelInfo m : models) {
            ObjectNode o = data.addObject();
            o.put("id", m.id());
            o.put("object", "model");
            o.put("created", created);
            o.put("owned_by", "tandem");
            o.put("type", m.role() == ModelInfo.Role.MAIN ? "llm" : "draft");
            o.put("context_length", m.contextLength());
        }
        return root;
    }

    /** The envelope every completion object and chunk shares. */
    private ObjectNode envelope(String id, String object, long created, String model) {
        ObjectNode root = json.createObjectNode();
        root.put("id", id);
        root.put("object", object);
        root.put("created", created);
        root.put("model", model);
        return root;
    }

    ObjectNode chatCompletion(String id, long created, String model, String text, FinishReason reason, GenerationStats stats) {
        ObjectNode root = envelope(id, "chat.completion", created, model);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        ObjectNode message = choice.putObject("message");
        message.put("role", "assistant");
        message.put("content", text);
        choice.putNull("logprobs");
        choice.put("finish_reason", reason.apiName());
        root.set("usage", usage(stats));
        root.set("stats", stats(stats));
        return root;
    }

    ObjectNode textCompletion(String id, long created, String model, String text, FinishReason reason, GenerationStats stats) {
        ObjectNode root = envelope(id, "text_completion", created, model);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("text", text);
        choice.put("index", 0);
        choice.putNull("logprobs");
        choice.put("finish_reason", reason.apiName());
        root.set("usage", usage(stats));
        root.set("stats", stats(stats));
        return root;
    }

    /** A stream chunk: {@code role} only in a chat's first chunk; {@code reason} only in the last. */
    ObjectNode chunk(boolean chat, String id, long created, String model, String role, String text, FinishReason reason) {
        ObjectNode root = envelope(id, chat ? "chat.completion.chunk" : "text_completion", created, model);
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        if (chat) {
            ObjectNode delta = choice.putObject("delta");
            if (role != null) delta.put("role", role);
            if (text != null) delta.put("content", text);
        } else {
            choice.put("text", text == null ? "" : text);
        }
        choice.putNull("logprobs");
        if (reason == null) choice.putNull("finish_reason");
        else choice.put("finish_reason", reason.apiName());
        return root;
    }

    /** The chunk after the last choice when {@code stream_options.include_usage} is set: no choices, usage and stats. */
    ObjectNode usageChunk(boolean chat, String id, long created, String model, GenerationStats stats) {
        ObjectNode root = envelope(id, chat ? "chat.completion.chunk" : "text_completion", created, model);
        root.putArray("choices");
        root.set("usage", usage(stats));
        root.set("stats", stats(stats));
        return root;
    }

    ObjectNode usage(GenerationStats s) {
        ObjectNode u = json.createObjectNode();
        u.put("prompt_tokens", s.promptTokens());
        u.put("completion_tokens", s.completionTokens());
        u.put("total_tokens", s.totalTokens());
        u.putObject("prompt_tokens_details").put("cached_tokens", s.cachedPromptTokens());
        ObjectNode details = u.putObject("completion_tokens_details");
        details.put("accepted_prediction_tokens", s.acceptedDraftTokens());
        details.put("rejected_prediction_tokens", s.rejectedDraftTokens());
        return u;
    }

    /** LM Studio's {@code stats} names. */
    ObjectNode stats(GenerationStats s) {
        ObjectNode o = json.createObjectNode();
        o.put("tokens_per_second", s.tokensPerSecond());
        o.put("time_to_first_token", s.timeToFirstToken());
        o.put("prompt_tokens_count", s.promptTokens());
        o.put("predicted_tokens_count", s.completionTokens());
        if (s.draftModel() != null) {
            o.put("draft_model", s.draftModel());
            o.put("total_draft_tokens_count", s.draftTokens());
            o.put("accepted_draft_tokens_count", s.acceptedDraftTokens());
            o.put("rejected_draft_tokens_count", s.rejectedDraftTokens());
            o.put("ignored_draft_tokens_count", s.ignoredDraftTokens());
        }
        return o;
    }
}
