package dev.tandem.cli;

import dev.tandem.engine.GenerationEvent;

import java.io.PrintWriter;
import java.util.function.Consumer;

/** Prints generated text as it streams; with {@code --color}, tokens accepted from the draft in green. */
final class ChunkPrinter implements Consumer<GenerationEvent.Chunk> {
    static final String GREEN = "\u001b[32m", RESET = "\u001b[0m";

    private final PrintWriter out;
    private final boolean color;

    ChunkPrinter(PrintWriter out, boolean color) {
        this.out = out;
        this.color = color;
    }

    @Override
    public void accept(GenerationEvent.Chunk chunk) {
        if (chunk.text().isEmpty()) return;
        boolean green = color && chunk.fromDraft();
        if (green) out.print(GREEN);
        out.print(chunk.text());
        if (green) out.print(RESET);
        out.flush();
    }
}
