package dev.tandem.runtime.cuda;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Where JCuda's natives ({@code libJCudaDriver}, {@code libJCublas2}) are unpacked before they load: JCuda writes
 * them from its jars into {@code java.io.tmpdir}, and a {@code /tmp} mounted noexec makes that fail with a dump of
 * stack traces. They go into {@code -Dtandem.nativeDir=DIR} instead, by default {@code ~/.cache/tandem/natives}
 * ({@code $XDG_CACHE_HOME/tandem/natives}).
 */
final class JCudaNatives {
    static final String PROPERTY = "tandem.nativeDir";

    private JCudaNatives() {}

    static Path directory() {
        String dir = System.getProperty(PROPERTY);
        if (dir != null && !dir.isBlank()) return Path.of(dir);
        String cache = System.getenv("XDG_CACHE_HOME");
        Path base = cache != null && !cache.isBlank() ? Path.of(cache) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("tandem").resolve("natives");
    }

    /**
     * Runs {@code firstTouch}, the first use of a JCuda class (whose static initialiser loads its natives), with
     * {@code java.io.tmpdir} pointing at {@link #directory()}: JCuda reads that property when it unpacks. The
     * property is restored at once; the JDK's own temporary files read it once at startup, so they are unaffected.
     */
    static synchronized void load(Runnable firstTouch) {
        Path dir = directory();
        String tmp = System.getProperty("java.io.tmpdir");
        try {
            Files.createDirectories(dir);
            System.setProperty("java.io.tmpdir", dir.toString());
        } catch (IOException | SecurityException e) {
            // Unusable: JCuda uses java.io.tmpdir as it would have.
        }
        try {
            firstTouch.run();
        } finally {
            System.setProperty("java.io.tmpdir", tmp);
        }
    }

    /**
     * JCuda's loading failure is a multi-line dump (every attempt, nested stack traces): its first line, and the
     * innermost cause's, say what was missing.
     */
    static String firstLine(Throwable t) {
        Throwable root = t;
        while (root.getCause() != null && root.getCause() != root) root = root.getCause();
        String first = t.getMessage() == null ? t.getClass().getSimpleName() : line(t.getMessage());
        String inner = root == t ? "" : line(root.getMessage());
        return inner.isEmpty() || first.contains(inner) ? first : first + " (" + inner + ")";
    }

    private static String line(String message) {
        if (message == null) return "";
        String s = message.strip();
        int end = s.indexOf('\n');
        return (end < 0 ? s : s.substring(0, end)).strip();
    }
}
