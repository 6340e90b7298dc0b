package dev.tandem.server;

import jakarta.servlet.http.HttpServletRequest;
import org.eclipse.jetty.ee10.servlet.ServletContextRequest;
import org.eclipse.jetty.http.HttpVersion;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.io.SocketChannelEndPoint;
import org.eclipse.jetty.server.ConnectionMetaData;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * Tells whether the client of a plain HTTP/1.x request has hung up while its answer is being computed.
 *
 * <p>Why a probe: Jetty reads a connection only when the application asks for request content, and once the body
 * has been read to its end it never looks at the socket again until the response is done, so a closed socket goes
 * unnoticed for the whole generation. A non-blocking read of one byte does notice: it returns -1 (end of stream) or
 * fails (reset) once the client is gone, and 0 while it waits. The probe only reads after the whole request body
 * is consumed, so a byte it gets can only be the start of a pipelined next request; that byte cannot be handed
 * back, so the probe stops and the answer closes the connection instead (a pipelining client then resends).
 * TLS and HTTP/2 connections carry other bytes on the socket and are not probed.
 */
final class HangUpProbe {
    private EndPoint endPoint;          // null: nothing to probe (not plain HTTP/1.x, or stopped)
    private boolean tookNextRequestByte;

    private HangUpProbe(EndPoint endPoint) {
        this.endPoint = endPoint;
    }

    /** A probe for this request's connection; one that never reports a hang-up where the connection cannot be probed. */
    static HangUpProbe of(HttpServletRequest request) {
        ServletContextRequest jetty = ServletContextRequest.getServletContextRequest(request);
        ConnectionMetaData connection = jetty == null ? null : jetty.getConnectionMetaData();
        if (connection == null || connection.isSecure()) return new HangUpProbe(null);
        HttpVersion version = connection.getHttpVersion();
        if (version != HttpVersion.HTTP_1_1 && version != HttpVersion.HTTP_1_0) return new HangUpProbe(null);
        EndPoint e = connection.getConnection().getEndPoint();
        return new HangUpProbe(e instanceof SocketChannelEndPoint ? e : null);
    }

    /** True once the client has closed or reset its connection. One non-blocking read; call it at a slow pace. */
    boolean clientGone() {
        if (endPoint == null) return false;
        if (!endPoint.isOpen() || endPoint.isInputShutdown()) return true;
        ByteBuffer one = ByteBuffer.allocate(1).limit(0);      // Jetty fills buffers in flush mode: empty, room for one byte
        try {
            int n = endPoint.fill(one);
            if (n > 0) {
                tookNextRequestByte = true;
                endPoint = null;
            }
            return n < 0;
        } catch (IOException reset) {
            return true;
        }
    }

    /** True when a probe read the first byte of a pipelined request: the connection must close after this answer. */
    boolean tookNextRequestByte() { return tookNextRequestByte; }
}
