package dev.tandem.server;

import org.eclipse.jetty.http.HttpParser;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.server.internal.HttpConnection;
import org.eclipse.jetty.util.thread.Scheduler;

import java.util.concurrent.TimeUnit;

/**
 * Closes a connection whose request line and headers take longer than a deadline to arrive, however steadily they
 * trickle in. The idle timeout alone does not: a client that sends one byte a little more often than it would fire
 * holds a connection for hours (8 KiB of headers). Checked every {@code period}: a connection seen in the middle of
 * the same request's headers at two checks in a row is closed, so headers get between one and two periods.
 *
 * <p>Jetty has no such setting; this reads its HTTP/1 connection's parser state (a class in an {@code internal}
 * package, read only through public methods) and closes the endpoint, which is what an idle timeout does too.
 */
final class HeaderDeadline implements Connection.Listener {
    private final Scheduler scheduler;
    private final long periodMillis;

    HeaderDeadline(Scheduler scheduler, long periodMillis) {
        this.scheduler = scheduler;
        this.periodMillis = periodMillis;
    }

    @Override
    public void onOpened(Connection connection) {
        if (connection instanceof HttpConnection http) new Watch(http).schedule();
    }

    /** One connection's checks; they end when it closes. */
    private final class Watch implements Runnable {
        private final HttpConnection http;
        private long requestsSeen = -1;
        private boolean inHeadersBefore;

        Watch(HttpConnection http) {
            this.http = http;
        }

        void schedule() {
            scheduler.schedule(this, periodMillis, TimeUnit.MILLISECONDS);
        }

        @Override
        public void run() {
            if (!http.getEndPoint().isOpen()) return;
            HttpParser parser = http.getParser();
            // START is the state between requests (the idle timeout covers it); other header states mean a request
            // line or headers have begun and not ended.
            boolean inHeaders = parser.inHeaderState() && !parser.isStart();
            long requests = http.getMessagesIn();
            if (inHeaders && inHeadersBefore && requests == requestsSeen) {
                http.getEndPoint().close();
                return;
            }
            inHeadersBefore = inHeaders;
            requestsSeen = requests;
            schedule();
        }
    }
}
