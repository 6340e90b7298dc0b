package dev.tandem.server;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * HTTP/1.1 over a plain socket, for requests no HTTP client will send (bad request lines, odd headers, bodies
 * shorter than their Content-Length, stalls). The socket timeout bounds a hang; it is not a speed check.
 */
final class RawHttp {
    private RawHttp() {}

    /** A response as read off the socket: status 0 when the server closed the connection without answering. */
    record Response(int status, Map<String, String> headers, String body) {
        String header(String name) { return headers.get(name.toLowerCase(Locale.ROOT)); }
    }

    /** Sends {@code request} as is, then reads until the server closes the connection or the answer is complete. */
    static Response exchange(int port, byte[] request, int timeoutMillis) throws IOException {
        try (Socket s = new Socket("127.0.0.1", port)) {
            s.setSoTimeout(timeoutMillis);
            OutputStream out = s.getOutputStream();
            try {
                out.write(request);
                out.flush();
            } catch (IOException closedEarly) {
                // The server may answer (and close) before it has read all of a bad request; read what it said.
            }
            return read(s.getInputStream());
        }
    }

    static Response exchange(int port, String request, int timeoutMillis) throws IOException {
        return exchange(port, request.getBytes(StandardCharsets.ISO_8859_1), timeoutMillis);
    }

    /** A request with {@code Connection: close} and a Content-Length for {@code body} (null: no body). */
    static byte[] request(String method, String path, byte[] body, String... headers) {
        StringBuilder h = new StringBuilder(method).append(' ').append(path).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (int i = 0; i < headers.length; i += 2) h.append(headers[i]).append(": ").append(headers[i + 1]).append("\r\n");
        if (body != null) h.append("Content-Length: ").append(body.length).append("\r\n");
        h.append("\r\n");
        byte[] head = h.toString().getBytes(StandardCharsets.ISO_8859_1);
        if (body == null) return head;
        byte[] all = new byte[head.length + body.length];
        System.arraycopy(head, 0, all, 0, head.length);
        System.arraycopy(body, 0, all, head.length, body.length);
        return all;
    }

    /** Reads a response: until end of stream, or until its Content-Length or last chunk has come. */
    static Response read(InputStream in) throws IOException {
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        byte[] buf = new byte[8192];
        int headEnd = -1;
        Map<String, String> headers = new LinkedHashMap<>();
        int status = 0;
        try {
            for (int n; (n = in.read(buf)) > 0; ) {
                all.write(buf, 0, n);
                byte[] b = all.toByteArray();
                if (headEnd < 0) {
                    headEnd = indexOf(b, "\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
                    if (headEnd >= 0 && b.length > 9 && b[9] == '1') {      // an interim 1xx answer (100 Continue): skip it
                        all.reset();
                        all.write(b, headEnd + 4, b.length - headEnd - 4);
                        headEnd = indexOf(all.toByteArray(), "\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
                        b = all.toByteArray();
                    }
                    if (headEnd >= 0) {
                        String[] lines = new String(b, 0, headEnd, StandardCharsets.ISO_8859_1).split("\r\n");
                        String[] first = lines[0].split(" ", 3);
                        status = Integer.parseInt(first[1]);
                        for (int i = 1; i < lines.length; i++) {
                            int colon = lines[i].indexOf(':');
                            if (colon > 0) headers.put(lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).trim());
                        }
                    }
                }
                if (headEnd >= 0 && complete(b, headEnd + 4, headers)) break;
            }
        } catch (SocketTimeoutException e) {
            throw e;
        } catch (IOException reset) {
            // a reset after the answer, or instead of one: return what came
        }
        byte[] b = all.toByteArray();
        if (headEnd < 0) return new Response(0, headers, new String(b, StandardCharsets.UTF_8));
        byte[] body = java.util.Arrays.copyOfRange(b, headEnd + 4, b.length);
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) body = dechunk(body);
        return new Response(status, headers, new String(body, StandardCharsets.UTF_8));
    }

    private static boolean complete(byte[] b, int bodyStart, Map<String, String> headers) {
        String length = headers.get("content-length");
        if (length != null) return b.length - bodyStart >= Long.parseLong(length);
        if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
            return new String(b, bodyStart, b.length - bodyStart, StandardCharsets.ISO_8859_1).endsWith("0\r\n\r\n");
        }
        return false;
    }

    private static byte[] dechunk(byte[] body) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        int i = 0;
        while (i < body.length) {
            int eol = indexOf(java.util.Arrays.copyOfRange(body, i, body.length), "\r\n".getBytes(StandardCharsets.ISO_8859_1));
            if (eol < 0) break;
            int size = Integer.parseInt(new String(body, i, eol, StandardCharsets.ISO_8859_1).split(";")[0].trim(), 16);
            i += eol + 2;
            if (size == 0) break;
            out.write(body, i, Math.min(size, body.length - i));
            i += size + 2;
        }
        return out.toByteArray();
    }

    private static int indexOf(byte[] b, byte[] what) {
        outer:
        for (int i = 0; i + what.length <= b.length; i++) {
            for (int j = 0; j < what.length; j++) if (b[i + j] != what[j]) continue outer;
            return i;
        }
        return -1;
    }
}
