package dev.tandem.cli;

import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;

import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Reads a large model's mapped weights into memory before the first pass, with a progress bar on a terminal,
 * so that loading is visible instead of hiding in the first token's latency. Quiet (and skipped) when stderr
 * is not a terminal, for small models, and with {@code --json}.
 */
final class LoadProgress {
    /** Below this, loading is too quick to be worth a bar. */
    static final long THRESHOLD_BYTES = 256L << 20;
    private static final int WIDTH = 30;

    private LoadProgress() {}

    static void warmUp(ModelFile file, boolean quiet) {
        long total = file.weightBytes();
        if (quiet || total < THRESHOLD_BYTES || System.console() == null) return;
        PrintStream err = System.err;
        String name = file.path().getFileName().toString();
        long done = 0;
        int shown = -1;
        long sink = 0;
        for (Tensor t : file.tensors()) {
            MemorySegment data = t.data();
            for (long off = 0; off < data.byteSize(); off += 4096) {
                sink += data.get(ValueLayout.JAVA_BYTE, off); // one read per page faults it in
                if ((off & ((1 << 24) - 1)) == 0) {
                    int pct = (int) ((done + off) * 100 / total);
                    if (pct != shown) {
                        shown = pct;
                        int fill = pct * WIDTH / 100;
                        err.printf("\rloading %s [%s%s] %3d%%", name, "#".repeat(fill), " ".repeat(WIDTH - fill), pct);
                    }
                }
            }
            done += data.byteSize();
        }
        err.printf("\rloading %s [%s] 100%% (%.1f GB)%s%n", name, "#".repeat(WIDTH), total / 1e9, sink == 42 ? " " : "");
    }
}
