package dev.tandem.runtime.cuda;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** NVTX ranges: bound when a library is present and profiling is on, harmless no-ops otherwise. */
class NvtxTest {
    @Test
    void withoutTheLibraryRangesAreNoOps() {
        Nvtx nvtx = Nvtx.load(true, List.of("libtandem-no-such-nvtx.so.1"));
        assertFalse(nvtx.isBound());
        for (Nvtx.Phase p : Nvtx.Phase.values()) {
            try (Nvtx.Range r = nvtx.range(p)) {
                assertTrue(r != null);
            }
        }
        try (Nvtx.Range r = nvtx.range("free-form")) {
            assertTrue(r != null);
        }
    }

    @Test
    void profilingOffBindsNothingEvenWhereTheLibraryExists() {
        assertFalse(Nvtx.load(false, Nvtx.LIBRARIES).isBound());
    }

    @Test
    void whereAnNvtxLibraryIsInstalledRangesBindAndNest() {
        assumeTrue(libraryInstalled(), "no libnvtx3interop.so.1 / libnvToolsExt.so.1 on this machine's library path");
        Nvtx nvtx = Nvtx.load(true, Nvtx.LIBRARIES);
        assertTrue(nvtx.isBound(), nvtx.describe());
        for (int i = 0; i < 1000; i++) {
            try (Nvtx.Range outer = nvtx.range(Nvtx.Phase.VERIFY); Nvtx.Range inner = nvtx.range(Nvtx.Phase.ACCEPT)) {
                assertTrue(outer != null && inner != null);
            }
        }
        try (Nvtx.Range r = nvtx.range("step 1")) {
            assertTrue(r != null);
        }
    }

    @Test
    void theShimBuiltFromTheNvtx3HeadersLoadsFirstAndTakesRangesAndMarks() {
        Path shim = Nvtx.shim().orElse(null);
        assumeTrue(shim != null, "no libtandem_nvtx.so: native-build/build-nvtx.sh found no nvtx3 headers here");
        Nvtx nvtx = Nvtx.load(true, shim, Nvtx.LIBRARIES);
        assertTrue(nvtx.isBound() && nvtx.describe().equals("NVTX ranges through " + shim), nvtx.describe());
        // No profiler attached: NVTX 3 finds no injected tool and every call returns at once.
        Nvtx.Ranges ranges = nvtx.forModel("kjv-main");
        for (int i = 0; i < 1000; i++) {
            try (Nvtx.Range verify = ranges.open(Nvtx.Phase.VERIFY); Nvtx.Range accept = ranges.open(Nvtx.Phase.ACCEPT)) {
                assertTrue(verify != null && accept != null);
            }
        }
        nvtx.mark("step 1");
        assertEquals("kjv-main", ranges.model());
    }

    @Test
    void aMissingShimFallsBackToTheNvtxLibrariesThenToNothing() {
        Path missing = Path.of("target", "no-such-libtandem_nvtx.so");
        Nvtx fallback = Nvtx.load(true, missing, Nvtx.LIBRARIES);
        assertEquals(libraryInstalled(), fallback.isBound(), fallback.describe());
        assertFalse(Nvtx.load(true, missing, List.of("libtandem-no-such-nvtx.so.1")).isBound());
    }

    @Test
    void rangesAreNamedByPhaseAndModel() {
        assertEquals("verify kjv-main", Nvtx.label(Nvtx.Phase.VERIFY, "kjv-main"));
        assertEquals("draft kjv-draft", Nvtx.label(Nvtx.Phase.DRAFT, "kjv-draft"));
        assertEquals("rollback kjv-main", Nvtx.label(Nvtx.Phase.ROLLBACK, "kjv-main"));
        Nvtx.Ranges off = Nvtx.load(false, Nvtx.LIBRARIES).forModel("m");
        assertFalse(off.isBound());
        try (Nvtx.Range r = off.open(Nvtx.Phase.PREFILL)) {
            assertTrue(r != null);
        }
    }

    /** Whether the dynamic loader's cache lists an NVTX library (what {@code dlopen} by name finds). */
    static boolean libraryInstalled() {
        try {
            Process p = new ProcessBuilder("ldconfig", "-p").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            p.waitFor();
            return Nvtx.LIBRARIES.stream().anyMatch(out::contains);
        } catch (Exception e) {
            return Stream.of("/usr/lib/x86_64-linux-gnu/libnvToolsExt.so.1").map(Path::of).anyMatch(Files::exists);
        }
    }
}
