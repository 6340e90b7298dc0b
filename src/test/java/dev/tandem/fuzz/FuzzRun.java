package dev.tandem.fuzz;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.LongFunction;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Runs fuzz cases one by one, each on a worker thread with a hang guard, and fails with the case's seed and
 * description on the first finding: an exception the oracle does not allow, an {@code Error}, or a case that
 * runs past its time bound. {@code -Dtandem.fuzz.cases=N} raises the count for long local runs and
 * {@code -Dtandem.fuzz.seed=S} starts elsewhere; CI runs the defaults.
 */
final class FuzzRun {
    /** Generous: a case takes milliseconds; the bound only tells a hang from slow work. */
    static final Duration CASE_BOUND = Duration.ofSeconds(60);

    /** One prepared case: its files, what was done, and how to run it. */
    interface Case {
        String description();

        ModelLoadOracle.Outcome run();
    }

    record Totals(int cases, int refused, int generated, long millis) {
        @Override
        public String toString() {
            return cases + " cases (" + refused + " refused with a named error, " + generated + " loaded and generated) in " + millis + " ms";
        }
    }

    private FuzzRun() {}

    static int cases(int defaultCount) { return Integer.getInteger("tandem.fuzz.cases", defaultCount); }

    static long seed(long defaultSeed) { return Long.getLong("tandem.fuzz.seed", defaultSeed); }

    /** Runs cases {@code seed, seed+1, ...}, made by {@code make}, and returns the totals. */
    static Totals run(String name, long seed, int count, LongFunction<Case> make) {
        ExecutorService worker = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(null, r, "fuzz-" + name, 0);
            t.setDaemon(true);              // a hung case must not keep the test JVM alive
            return t;
        });
        long start = System.nanoTime();
        int refused = 0, generated = 0;
        try {
            for (int i = 0; i < count; i++) {
                long caseSeed = seed + i;
                Case c = make.apply(caseSeed);
                Future<ModelLoadOracle.Outcome> f = worker.submit(c::run);
                try {
                    if (f.get(CASE_BOUND.toMillis(), TimeUnit.MILLISECONDS) == ModelLoadOracle.Outcome.REFUSED) refused++;
                    else generated++;
                } catch (ExecutionException e) {
                    String finding = name + " case seed " + caseSeed + " (" + c.description() + "): " + e.getCause();
                    // Survey mode lists every finding instead of stopping at the first (to build the corpus).
                    if (Boolean.getBoolean("tandem.fuzz.survey")) System.out.println("FINDING " + finding);
                    else throw new AssertionError(finding, e.getCause());
                } catch (TimeoutException e) {
                    fail(name + " case seed " + caseSeed + " (" + c.description() + ") ran past " + CASE_BOUND);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    fail("interrupted");
                }
            }
        } finally {
            worker.shutdownNow();
        }
        Totals totals = new Totals(count, refused, generated, (System.nanoTime() - start) / 1_000_000);
        System.out.println(name + " fuzz, seed " + seed + ": " + totals);
        return totals;
    }

    /** A fresh, empty folder for one case under {@code root}; the previous case's is deleted first. */
    static Path freshFolder(Path root) {
        try {
            if (Files.exists(root)) {
                try (var walk = Files.walk(root)) {
                    for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) Files.delete(p);
                }
            }
            return Files.createDirectories(root);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
