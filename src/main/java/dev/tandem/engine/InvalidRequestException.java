package dev.tandem.engine;

/**
 * A request the engine cannot run as given. {@code param} names the offending field in the OpenAI API's terms
 * (e.g. "max_tokens"), or is null; {@code code} is a short machine-readable reason, or null.
 */
public class InvalidRequestException extends RuntimeException {
    private final String param;
    private final String code;

    public InvalidRequestException(String message, String param) {
        this(message, param, null);
    }

    public InvalidRequestException(String message, String param, String code) {
        this(message, param, code, null);
    }

    public InvalidRequestException(String message, String param, String code, Throwable cause) {
        super(message, cause);
        this.param = param;
        this.code = code;
    }

    public String param() { return param; }

    public String code() { return code; }
}
