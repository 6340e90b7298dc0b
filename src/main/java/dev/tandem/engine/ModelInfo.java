package dev.tandem.engine;

import java.nio.file.Path;

/** A model the engine holds: {@code id} is how requests name it; a draft serves the main model as drafter. */
public record ModelInfo(String id, Role role, Path path, int contextLength, int vocabularySize, long weightBytes) {
    public enum Role { MAIN, DRAFT }
}
