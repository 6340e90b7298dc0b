package dev.tandem.server;

/**
 * A request the server answers with an OpenAI-style error: {@code {"error":{"message","type","param","code"}}}
 * and {@code status}. {@code param} and {@code code} may be null.
 */
final class ApiException extends RuntimeException {
    final int status;
    final String type;
    final String param;
    final String code;

    ApiException(int status, String type, String message, String param, String code) {
        super(message);
        this.status = status;
        this.type = type;
        this.param = param;
        this.code = code;
    }

    static ApiException invalid(String message, String param) {
        return new ApiException(400, "invalid_request_error", message, param, null);
    }
}
