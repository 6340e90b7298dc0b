package dev.tandem.server;

import java.net.http.HttpResponse;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Predicate;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * One read of a server's {@code GET /metrics}: samples by their series, {@code name{label="value",...}} exactly
 * as the text format writes them (labels in the order the metric declares them).
 */
record Scrape(Map<String, Double> samples, String text) {
    static Scrape of(OpenAiServer server) throws Exception {
        HttpResponse<String> r = ServerFixture.get(server, "/metrics");
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain; version=0.0.4"), r.headers().toString());
        Map<String, Double> samples = new LinkedHashMap<>();
        for (String line : r.body().split("\n")) {
            if (line.isBlank() || line.startsWith("#")) continue;
            int space = line.lastIndexOf(' ');
            samples.put(line.substring(0, space), Double.parseDouble(line.substring(space + 1)));
        }
        return new Scrape(samples, r.body());
    }

    /** Scrapes until {@code done} holds, at most {@code millis} (a wait for asynchronous bookkeeping, not a timing check). */
    static Scrape until(OpenAiServer server, long millis, Predicate<Scrape> done) throws Exception {
        long end = System.nanoTime() + millis * 1_000_000;
        Scrape s = of(server);
        while (!done.test(s) && System.nanoTime() < end) {
            Thread.sleep(20);
            s = of(server);
        }
        return s;
    }

    /** A series' value; 0 when the series has not appeared yet (a labelled counter before its first increment). */
    double get(String series) {
        return samples.getOrDefault(series, 0.0);
    }

    boolean has(String series) {
        return samples.containsKey(series);
    }

    /** The engine's load is back to nothing: no sequence running or waiting, every K/V block free. */
    boolean idle() {
        return get("tandem_active_sequences") == 0 && get("tandem_queue_depth") == 0 && get("tandem_kv_blocks_in_use") == 0;
    }
}
