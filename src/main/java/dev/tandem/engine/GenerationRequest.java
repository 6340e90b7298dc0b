package dev.tandem.engine;

import dev.tandem.tokenizer.ChatMessage;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * One generation: exactly one of {@code prompt} (text, tokenised with BOS and special tokens as the model asks),
 * {@code promptTokens} (used as given) or {@code messages} (rendered with the model's chat template).
 *
 * @param model        the main model's id, or null for the engine's main model
 * @param maxTokens    most tokens to generate; 0 means until the context is full
 * @param stop         strings that end generation; the stop string itself is not part of the output
 * @param deadline     when to give up (finish reason {@code DEADLINE}), or null
 * @param ignoreEndOfGeneration keep generating past end-of-generation tokens (benchmarks, tests)
 */
public record GenerationRequest(String model, String prompt, int[] promptTokens, List<ChatMessage> messages,
                                int maxTokens, SamplingSettings sampling, List<String> stop, DraftSettings draft,
                                Instant deadline, boolean ignoreEndOfGeneration) {
    public GenerationRequest {
        int given = (prompt != null ? 1 : 0) + (promptTokens != null ? 1 : 0) + (messages != null ? 1 : 0);
        if (given != 1) throw new InvalidRequestException("a request needs exactly one of a prompt, prompt tokens or chat messages", "prompt");
        if (messages != null && messages.isEmpty()) throw new InvalidRequestException("messages must not be empty", "messages");
        if (promptTokens != null && promptTokens.length == 0) throw new InvalidRequestException("prompt tokens must not be empty", "prompt");
        if (maxTokens < 0) throw new InvalidRequestException("max_tokens must be positive, got " + maxTokens, "max_tokens");
        if (sampling == null) sampling = SamplingSettings.greedy();
        stop = stop == null ? List.of() : List.copyOf(stop);
        for (String s : stop) if (s.isEmpty()) throw new InvalidRequestException("stop strings must not be empty", "stop");
        if (draft == null) draft = DraftSettings.off();
        if (messages != null) messages = List.copyOf(messages);
        if (promptTokens != null) promptTokens = promptTokens.clone();
    }

    public static Builder builder() { return new Builder(); }

    public static final class Builder {
        private String model;
        private String prompt;
        private int[] promptTokens;
        private List<ChatMessage> messages;
        private int maxTokens;
        private SamplingSettings sampling = SamplingSettings.greedy();
        private final List<String> stop = new ArrayList<>();
        private DraftSettings draft = DraftSettings.off();
        private Instant deadline;
        private boolean ignoreEndOfGeneration;

        public Builder model(String id) { this.model = id; return this; }

        public Builder prompt(String text) { this.prompt = text; return this; }

        public Builder promptTokens(int... ids) { this.promptTokens = ids; return this; }

        public Builder messages(List<ChatMessage> m) { this.messages = m; return this; }

        public Builder messages(ChatMessage... m) { this.messages = List.of(m); return this; }

        public Builder maxTokens(int n) { this.maxTokens = n; return this; }

        public Builder sampling(SamplingSettings s) { this.sampling = s; return this; }

        public Builder stop(String... s) { this.stop.addAll(List.of(s)); return this; }

        public Builder stop(List<String> s) { this.stop.addAll(s); return this; }

        public Builder draft(DraftSettings d) { this.draft = d; return this; }

        public Builder deadline(Instant at) { this.deadline = at; return this; }

        public Builder timeout(Duration d) { this.deadline = Instant.now().plus(d); return this; }

        public Builder ignoreEndOfGeneration(boolean on) { this.ignoreEndOfGeneration = on; return this; }

        public GenerationRequest build() {
            return new GenerationRequest(model, prompt, promptTokens, messages, maxTokens, sampling, stop, draft, deadline, ignoreEndOfGeneration);
        }
    }
}
