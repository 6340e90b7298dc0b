package dev.tandem.testing;

import dev.tandem.model.Tensor;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.model.gguf.GgufWriter;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;

/**
 * A copy of a GGUF file with edits: its metadata and tensors go through a {@link GgufWriter} that {@code edit}
 * may change (replace or remove keys), and each tensor through {@code tensors} (which may hand back one with
 * other data). For tests that need a real model with one thing wrong.
 */
public final class GgufCopy {
    private GgufCopy() {}

    public static Path of(Path source, Path out, Consumer<GgufWriter> edit) {
        return of(source, out, edit, UnaryOperator.identity());
    }

    public static Path of(Path source, Path out, Consumer<GgufWriter> edit, UnaryOperator<Tensor> tensors) {
        try (GgufFile in = GgufFile.open(source)) {
            GgufWriter w = new GgufWriter();
            in.metadata().forEach(w::putAsRead);
            edit.accept(w);
            for (Tensor original : in.tensors().values()) {
                Tensor t = tensors.apply(original);
                w.addTensor(t.name(), t.type(), t.shape(), sink -> sink.write(t.data()));
            }
            w.write(out);
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
