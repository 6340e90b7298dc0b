package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.runtime.cuda.EmulatedDevice;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * {@code tandem generate --backend cuda}: JCudaGpuDriver through JCuda on the emulated CUDA driver (the pom's
 * emulated-cuda run), on the tracked KJV Q8_0 pair. A speculative run gives the host emulation's tokens; a device
 * fault in a pass ends the command with one line naming the CUDA error and the pass, never a hang. (The time
 * limits are hang guards, generous on 2 loaded cores; nothing here measures speed.) {@code tandem bench --backend
 * cuda} runs over the emulated driver in {@code gpu-check.sh --rehearse}: its pass-cost sweep on this pair takes
 * minutes on the host emulation, too long for every build.
 */
@Tag("emulated-cuda")
class EmulatedCudaCliTest {
    static final String MAIN = "test-models/kjv-main-q8_0.gguf", DRAFT = "test-models/kjv-draft-q8_0.gguf";
    static final ObjectMapper JSON = new ObjectMapper();
    static final Duration HANG_GUARD = Duration.ofMinutes(3);

    @BeforeAll
    static void emulatedDriver() { assumeTrue(EmulatedDevice.isActive(), EmulatedDevice::whyNot); }

    @AfterEach
    void noFaultLeftArmed() { EmulatedDevice.injectFault(0); }

    static String[] generate(String backend, String tokens, String... more) {
        String[] base = {"generate", "-m", MAIN, "-p", "In the beginning God created", "-n", tokens, "--temperature", "0", "-t", "1",
                "--backend", backend, "--json"};
        String[] all = java.util.Arrays.copyOf(base, base.length + more.length);
        System.arraycopy(more, 0, all, base.length, more.length);
        return all;
    }

    @Test
    void aSpeculativeRunGivesTheHostEmulationsTokens() throws Exception {
        String[] speculative = {"--draft", DRAFT, "--draft-max", "3", "--draft-p-min", "0"};
        CliRun device = CliRun.of(generate("cuda", "6", speculative));
        assertEquals(0, device.exitCode(), device.err());
        CliRun host = CliRun.of(generate("cuda-host", "6", speculative));
        assertEquals(0, host.exitCode(), host.err());
        JsonNode d = JSON.readTree(device.out()), h = JSON.readTree(host.out());
        assertEquals(h.get("tokens"), d.get("tokens"));
        assertTrue(d.get("stats").get("total_draft_tokens_count").asInt() > 0, device.out());
    }

    @Test
    void aFaultInADecodePassEndsTheCommandWithOneLineNamingIt() {
        // The launches of a run that only prefills (one token): the fault goes to the second launch after them.
        long before = EmulatedDevice.launches();
        assertEquals(0, CliRun.of(generate("cuda", "1")).exitCode());
        long prefillAndLoad = EmulatedDevice.launches() - before;
        EmulatedDevice.injectFault(prefillAndLoad + 2);
        CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of(generate("cuda", "8")));
        assertTrue(run.failedWithOneLine(), run.err());
        assertEquals(1, run.err().strip().lines().count(), run.err());
        assertTrue(run.err().contains("CUDA_ERROR_ILLEGAL_ADDRESS") && run.err().contains("decode pass"), run.err());
    }

    @Test
    void aFaultInADraftAheadRunEndsTheCommandWithOneLineNamingIt() {
        String[] speculative = {"--draft", DRAFT, "--draft-max", "3", "--draft-p-min", "0"};
        long before = EmulatedDevice.launches();
        assertEquals(0, CliRun.of(generate("cuda", "1", speculative)).exitCode());
        long prefillAndLoad = EmulatedDevice.launches() - before;
        EmulatedDevice.injectFault(prefillAndLoad + 2);
        CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of(generate("cuda", "12", speculative)));
        assertTrue(run.failedWithOneLine(), run.err());
        assertEquals(1, run.err().strip().lines().count(), run.err());
        assertTrue(run.err().contains("CUDA_ERROR_ILLEGAL_ADDRESS") && run.err().matches("(?s).*in an? (draft|verify|decode|prefill) pass.*"), run.err());
    }
}
