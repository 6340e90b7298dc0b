package dev.tandem.cli;

import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** The options every model-reading command shares. */
final class ModelOptions {
    /** The bundled default, so that `tandem generate --prompt ...` works from the repository root. */
    static final Path DEFAULT_MODEL = Path.of("test-models", "kjv-main-q8_0.gguf");

    @Option(names = {"-m", "--model"}, paramLabel = "PATH",
            description = "GGUF file or Hugging Face folder (default: ${DEFAULT-VALUE})")
    Path model = DEFAULT_MODEL;

    @Option(names = "--verbose", description = "Print stack traces of errors.")
    boolean verbose;

    Path model() {
        if (model.equals(DEFAULT_MODEL) && !Files.exists(model)) {
            Path home = Path.of(System.getProperty("tandem.home", ".")).resolve(DEFAULT_MODEL);
            if (Files.exists(home)) return home;
        }
        return model;
    }
}
