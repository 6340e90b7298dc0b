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
        return requireFileOrFolder(model);
    }

    /**
     * {@code path} when it is missing (the loader names it), a regular file or a folder; anything else (a FIFO,
     * a device, a socket) would block or never end when read as a model, and is refused.
     */
    static Path requireFileOrFolder(Path path) {
        if (Files.exists(path) && !Files.isRegularFile(path) && !Files.isDirectory(path)) {
            throw new UserInputException(path + " is not a regular file or a folder (a FIFO, device or socket cannot be a model)");
        }
        return path;
    }
}
