package dev.tandem.testing;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the shared, read-only test data lives (models, reference outputs of the reference engine). */
public final class SharedData {
    private SharedData() {}

    public static Path root() {
        Path p = Path.of(System.getProperty("tandem.shared", "../shared")).toAbsolutePath().normalize();
        if (!Files.isDirectory(p)) throw new IllegalStateException("shared data not found at " + p);
        return p;
    }

    public static Path kjv(String file) { return root().resolve("models/kjv").resolve(file); }

    public static Path reference(String file) { return root().resolve("reference").resolve(file); }
}
