package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

/**
 * The fatbin nvcc built (where nvcc exists) holds every kernel Kernel names, under its plain extern "C" name, for
 * every SASS target it was built for. nvcc compresses a fatbin this large, so the names are read from ptxas's own
 * account of what it compiled ({@code fatbin-build.log}), written by the same build.
 */
class FatbinTest {
    @Test
    void everyKernelIsInTheFatbin() throws IOException {
        Path dir = Path.of("target", "native"), fatbin = dir.resolve("tandem_kernels.fatbin"), log = dir.resolve("fatbin-build.log");
        assumeTrue(Files.isRegularFile(fatbin), "no fatbin at " + fatbin.toAbsolutePath() + " (nvcc missing: build-fatbin.sh skipped it)");
        assertTrue(Files.getLastModifiedTime(log).compareTo(Files.getLastModifiedTime(fatbin)) <= 0, log + " is not from the build of " + fatbin);
        String text = Files.readString(log);
        String[] archs = Files.readString(dir.resolve("tandem_kernels.fatbin.archs")).trim().split(" ");
        for (int i = 1; i < archs.length && !archs[i].equals("ptx"); i++) {
            for (Kernel k : Kernel.all()) {
                assertTrue(text.contains("Compiling entry function '" + k.cudaName() + "' for 'sm_" + archs[i] + "'"),
                        "the fatbin has no sm_" + archs[i] + " kernel named " + k.cudaName());
            }
        }
    }
}
