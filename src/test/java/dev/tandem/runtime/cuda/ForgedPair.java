package dev.tandem.runtime.cuda;

import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.forge.ForgeType;
import dev.tandem.model.Architecture;
import dev.tandem.model.ModelFile;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A forged tiny main model (vocabulary 260, hidden 64, 2 layers, F32) and its draft, the main model's first layer,
 * in a temporary folder: small enough for sampling tests that enumerate distributions on the host emulation.
 * Closing it closes the files and deletes the folder.
 */
final class ForgedPair implements AutoCloseable {
    final ModelFile main, draft;
    private final Path dir;

    private ForgedPair(Path dir, ModelFile main, ModelFile draft) {
        this.dir = dir;
        this.main = main;
        this.draft = draft;
    }

    /** Forges the pair from {@code seed}. */
    static ForgedPair forge(long seed) {
        try {
            Path dir = Files.createTempDirectory("tandem-forged-pair");
            ForgeSpec spec = new ForgeSpec(Architecture.LLAMA, 260, 64, 2, 2, 1, 32, 128, 64, ForgeType.F32, false, 10000f, seed, 1f, 0, null);
            Path mainPath = dir.resolve("main.gguf"), draftPath = dir.resolve("draft.gguf");
            Forge.write(spec, mainPath);
            Forge.writeDraft(mainPath, 1, draftPath, Forge.Progress.NONE);
            return new ForgedPair(dir, ModelFile.open(mainPath), ModelFile.open(draftPath));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Closes each of {@code resources} that is not null, in order, going on past failures (test teardown). */
    static void closeAll(AutoCloseable... resources) {
        for (AutoCloseable c : resources) {
            try {
                if (c != null) c.close();
            } catch (Exception ignored) {
                // best effort: the other resources still get closed
            }
        }
    }

    @Override
    public void close() {
        closeAll(draft, main);
        try (var files = Files.list(dir)) {
            for (Path p : files.toList()) Files.deleteIfExists(p);
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
