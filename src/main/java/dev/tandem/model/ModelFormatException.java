package dev.tandem.model;

import java.nio.file.Path;

/**
 * A model file (GGUF, safetensors, Hugging Face folder) that cannot be read as Tandem needs it. The message
 * says what is wrong and where (file, and tensor or key when there is one); it is meant for users as it is.
 */
public class ModelFormatException extends RuntimeException {
    private final Path file;

    public ModelFormatException(Path file, String message) {
        super(file + ": " + message);
        this.file = file;
    }

    public ModelFormatException(Path file, String message, Throwable cause) {
        super(file + ": " + message, cause);
        this.file = file;
    }

    /** The file (or folder) at fault. */
    public Path file() { return file; }
}
