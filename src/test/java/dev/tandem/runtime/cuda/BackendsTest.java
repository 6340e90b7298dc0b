package dev.tandem.runtime.cuda;

import dev.tandem.runtime.Backend;
import dev.tandem.runtime.BackendUnavailableException;
import dev.tandem.engine.Backends;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** --backend names: auto falls back to the CPU with a one-line reason; cuda without a device says what is missing. */
class BackendsTest {
    @Test
    void cpuAndCudaHostOpenByName() {
        try (Backend cpu = Backends.open("cpu")) {
            assertEquals("cpu", cpu.name());
        }
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        try (Backend host = Backends.open("CUDA-host")) {
            assertEquals("cuda-host", host.name());
        }
    }

    @Test
    void autoFallsBackToTheCpuWithTheReasonWhereCudaIsUnavailable() {
        String reason = Backends.cudaUnavailableReason();
        assumeTrue(reason != null, "this machine has a usable CUDA device");
        Backends.Selection s = Backends.select("auto");
        try (Backend b = s.backend()) {
            assertEquals("cpu", b.name());
            assertTrue(s.fallbackReason().startsWith("CUDA unavailable: ") && s.fallbackReason().endsWith("; using the CPU")
                    && !s.fallbackReason().contains("\n"), s.fallbackReason());
            System.out.println("auto: " + s.fallbackReason());
        }
    }

    @Test
    void cudaWithoutADeviceNamesWhatIsMissing() {
        String reason = Backends.cudaUnavailableReason();
        assumeTrue(reason != null, "this machine has a usable CUDA device");
        var e = assertThrows(BackendUnavailableException.class, () -> Backends.open("cuda"));
        assertEquals("CUDA unavailable: " + reason, e.getMessage());
    }

    @Test
    void theCpuIsChosenWithoutAReasonWhenAskedFor() {
        Backends.Selection s = Backends.select("cpu");
        s.backend().close();
        assertNull(s.fallbackReason());
    }

    @Test
    void unknownNamesListTheKnownOnes() {
        var e = assertThrows(IllegalArgumentException.class, () -> Backends.open("tpu"));
        assertTrue(e.getMessage().contains("tpu") && e.getMessage().contains(Backends.NAMES), e.getMessage());
    }
}
