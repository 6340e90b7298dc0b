package dev.tandem.tokenizer;

/**
 * Tokenizer data that cannot be used: a missing or truncated file, a missing or mistyped key, an unsupported
 * tokenizer kind. The message names the file or key at fault and is meant for users as it is.
 */
public final class TokenizerException extends RuntimeException {
    public TokenizerException(String message) {
        super(message);
    }

    public TokenizerException(String message, Throwable cause) {
        super(message, cause);
    }
}
