package dev.tandem.server;

import com.fasterxml.jackson.core.JsonProcessingException;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * Jetty's own errors as OpenAI-style JSON instead of its HTML pages: those raised before any route runs (a bad
 * request line, URI or header, a URI or header block too large, a bad Content-Length, an idle timeout while the
 * request is read). The message is Jetty's reason, never a stack trace or an exception's name.
 */
final class JsonErrorHandler extends ErrorHandler {
    private final ResponseJson responses;

    JsonErrorHandler(ResponseJson responses) {
        this.responses = responses;
    }

    /** Jetty writes error bodies only for GET, POST and HEAD; every method gets one here. */
    @Override
    public boolean errorPageForMethod(String method) {
        return true;
    }

    @Override
    protected void generateResponse(Request request, Response response, int code, String message, Throwable cause, Callback callback) {
        int status = clientStatus(code);
        byte[] body = body(status, code, message);
        response.setStatus(status);
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
        response.write(true, ByteBuffer.wrap(body), callback);
    }

    /** The body of an answer Jetty writes on its own (no request object yet). */
    @Override
    public ByteBuffer badMessageError(int status, String reason, HttpFields.Mutable fields) {
        fields.put(HttpHeader.CONTENT_TYPE, "application/json");
        return ByteBuffer.wrap(body(status, status, reason));
    }

    /**
     * 505 (an HTTP version other than 1.0 and 1.1 on this connector, or none) is the client's doing like any other
     * malformed request line: a 400, so that no client input is ever counted as a server error.
     */
    private static int clientStatus(int code) {
        return code == HttpStatus.HTTP_VERSION_NOT_SUPPORTED_505 ? HttpStatus.BAD_REQUEST_400 : code;
    }

    private byte[] body(int status, int jettyStatus, String message) {
        String reason = message == null || message.isBlank() ? HttpStatus.getMessage(jettyStatus) : message;
        String type = status >= 500 ? "server_error" : "invalid_request_error";
        try {
            return responses.errorText(jettyStatus + " " + HttpStatus.getMessage(jettyStatus) + ": " + reason, type, null, null)
                    .getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException impossible) {
            return "{\"error\":{\"message\":\"error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}".getBytes(StandardCharsets.UTF_8);
        }
    }
}
