package dev.tandem.server;

import com.fasterxml.jackson.core.JsonProcessingException;
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

    @Override
    protected void generateResponse(Request request, Response response, int code, String message, Throwable cause, Callback callback) {
        String reason = message == null || message.isBlank() ? HttpStatus.getMessage(code) : message;
        String type = code >= 500 ? "server_error" : "invalid_request_error";
        byte[] body;
        try {
            body = responses.errorText(code + " " + HttpStatus.getMessage(code) + ": " + reason, type, null, null).getBytes(StandardCharsets.UTF_8);
        } catch (JsonProcessingException impossible) {
            body = "{\"error\":{\"message\":\"error\",\"type\":\"server_error\",\"param\":null,\"code\":null}}".getBytes(StandardCharsets.UTF_8);
        }
        response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
        response.getHeaders().put(HttpHeader.CONTENT_LENGTH, body.length);
        response.write(true, ByteBuffer.wrap(body), callback);
    }
}
