package dev.tandem.engine;

/** The prompt does not fit the context, with room for at least one generated token. */
public class PromptTooLongException extends InvalidRequestException {
    private final int promptTokens;
    private final int contextLength;

    public PromptTooLongException(int promptTokens, int contextLength, String param) {
        super("the prompt has " + promptTokens + " tokens but the context holds " + contextLength
                + " (at most " + (contextLength - 1) + " prompt tokens leave room for one to generate)", param, "context_length_exceeded");
        this.promptTokens = promptTokens;
        this.contextLength = contextLength;
    }

    public int promptTokens() { return promptTokens; }

    public int contextLength() { return contextLength; }
}
