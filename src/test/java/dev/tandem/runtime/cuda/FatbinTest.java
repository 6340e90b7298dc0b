package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

/** The fatbin nvcc built (where nvcc exists) holds every kernel Kernel names, under its plain extern "C" name. */
class FatbinTest {
    @Test
    void everyKernelIsInTheFatbin() throws IOException {
        Path fatbin = Path.of("target", "native", "tandem_kernels.fatbin");
        assumeTrue(Files.isRegularFile(fatbin), "no fatbin at " + fatbin.toAbsolutePath() + " (nvcc missing: build-fatbin.sh skipped it)");
        String text = new String(Files.readAllBytes(fatbin), StandardCharsets.ISO_8859_1);
        for (Kernel k : Kernel.values()) {
            assertTrue(text.contains(k.cudaName()), "the fatbin has no kernel named " + k.cudaName());
        }
    }
}
