package dev.tandem.runtime.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The kernel sanitizers catch what they are there for (issue 16): each planted bug of
 * {@code src/test/native/planted_kernels.cu} fails its check, and its correct twin passes the same check, so the
 * failure is the bug's. Runs in {@code mvn verify}'s kernel-sanitizers execution, the same JVM configuration as the
 * kernel tests there: the ASan runtime preloaded, the race check's orders set, the sanitized planted kernels at
 * {@value PlantedKernels#PROPERTY}.
 */
@Tag("sanitizer")
class PlantedBugsTest {
    private Path library;

    @BeforeEach
    void findLibrary() {
        String property = System.getProperty(PlantedKernels.PROPERTY);
        assumeTrue(property != null, "run by mvn verify's kernel-sanitizers execution (-D" + PlantedKernels.PROPERTY + " unset)");
        library = Path.of(property);
        assumeTrue(Files.isRegularFile(library), () -> library + " not built (native-build/build-sanitizers.sh found no sanitizer runtime)");
    }

    @Test
    void addressSanitizerStopsAKernelReadingOnePastItsBuffer() throws Exception {
        Child child = launchInChildJvm("adjacent-off-by-one");
        assertNotEquals(0, child.exitCode(), child.output());
        assertTrue(child.output().contains("ERROR: AddressSanitizer: heap-buffer-overflow"), child.output());
        assertTrue(child.output().contains("READ of size 4"), child.output());
        assertTrue(child.output().contains("planted_kernels.cu"), "the report should name the kernel's source line:\n" + child.output());
        assertFalse(child.output().contains("planted kernel status"), "the launch should not have returned:\n" + child.output());
    }

    @Test
    void addressSanitizerPassesTheSameKernelWithinBounds() throws Exception {
        Child child = launchInChildJvm("adjacent");
        assertEquals(0, child.exitCode(), child.output());
        assertTrue(child.output().contains("planted kernel status 0, out[998] = 1997.0"), child.output());
        assertFalse(child.output().contains("AddressSanitizer"), child.output());
    }

    @Test
    void theRaceCheckCatchesAMissingBarrier() {
        PlantedKernels kernels = new PlantedKernels(library);
        RaceCheck check = new RaceCheck(configuredOrders(), kernels.orderSwitch());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = mirrorInput(arena), out = arena.allocate(PlantedKernels.MIRROR_THREADS * 4L, 4);
            KernelRaceException e = assertThrows(KernelRaceException.class,
                    () -> check.launch("planted_mirrored_sums_no_barrier", buffers(in, out), () -> kernels.mirroredSums(false, in, out)));
            assertTrue(e.getMessage().contains("out differs between the forward and " + configuredOrders().getFirst()), e.getMessage());
        }
    }

    @Test
    void theRaceCheckPassesTheSameKernelWithItsBarrier() {
        PlantedKernels kernels = new PlantedKernels(library);
        RaceCheck check = new RaceCheck(configuredOrders(), kernels.orderSwitch());
        try (Arena arena = Arena.ofConfined()) {
            int n = PlantedKernels.MIRROR_THREADS;
            MemorySegment in = mirrorInput(arena), out = arena.allocate(n * 4L, 4);
            assertEquals(0, check.launch("planted_mirrored_sums", buffers(in, out), () -> kernels.mirroredSums(true, in, out)));
            for (int t = 0; t < n; t++) {
                float expected = in.getAtIndex(ValueLayout.JAVA_FLOAT, t) + in.getAtIndex(ValueLayout.JAVA_FLOAT, n - 1 - t);
                assertEquals(expected, out.getAtIndex(ValueLayout.JAVA_FLOAT, t), "out[" + t + "]");
            }
        }
    }

    @Test
    void theKernelTestsBesideThisOneRunOnTheSanitizedEmulationWithTheRaceCheck() {
        HostKernels kernels = HostKernels.get();
        assertEquals(Path.of(System.getProperty("tandem.hostKernels")), kernels.library());
        assertEquals(library.getParent(), kernels.library().getParent(), "the planted kernels and the kernels under test should be built alike");
        assertEquals(configuredOrders(), kernels.raceCheckOrders());
    }

    @Test
    void aMisspelledOrderIsRefusedByName() {
        PlantedKernels kernels = new PlantedKernels(library);
        RaceCheck check = new RaceCheck(List.of("backwards"), kernels.orderSwitch());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = mirrorInput(arena), out = arena.allocate(PlantedKernels.MIRROR_THREADS * 4L, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> check.launch("planted_mirrored_sums", buffers(in, out), () -> kernels.mirroredSums(true, in, out)));
            assertTrue(e.getMessage().contains("thread order backwards: expected forward, reversed or shuffled:<seed>"), e.getMessage());
        }
    }

    /** The orders the kernel tests of this execution are checked under: the planted bug must be caught by those. */
    private static List<String> configuredOrders() {
        List<String> orders = RaceCheck.requestedOrders();
        assertFalse(orders.isEmpty(), "-D" + RaceCheck.PROPERTY + " should list the race check's orders in this execution");
        return orders;
    }

    private static List<RaceCheck.Buffer> buffers(MemorySegment in, MemorySegment out) {
        return List.of(new RaceCheck.Buffer("in", in), new RaceCheck.Buffer("out", out));
    }

    private static MemorySegment mirrorInput(Arena arena) {
        MemorySegment in = arena.allocate(PlantedKernels.MIRROR_THREADS * 4L, 4);
        for (int t = 0; t < PlantedKernels.MIRROR_THREADS; t++) in.setAtIndex(ValueLayout.JAVA_FLOAT, t, 1 + t * t);
        return in;
    }

    private record Child(int exitCode, String output) {}

    /** PlantedKernelLaunch in a fresh JVM that inherits this one's environment: the ASan runtime and its options. */
    private Child launchInChildJvm(String kernel) throws IOException, InterruptedException, URISyntaxException {
        String preload = System.getenv().getOrDefault("LD_PRELOAD", "");
        assumeTrue(preload.contains("asan"), "this JVM has no ASan runtime preloaded (LD_PRELOAD=" + preload + ")");
        String classPath = codeSource(PlantedKernelLaunch.class) + java.io.File.pathSeparator + codeSource(HostKernels.class);
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process process = new ProcessBuilder(java.toString(), "--enable-native-access=ALL-UNNAMED", "-Xmx256m", "-cp", classPath,
                PlantedKernelLaunch.class.getName(), library.toString(), kernel).redirectErrorStream(true).start();
        // Reading to the end returns when the child exits; the wait bounds a child that hangs instead of aborting.
        byte[] output = process.getInputStream().readAllBytes();
        if (!process.waitFor(2, TimeUnit.MINUTES)) {
            process.destroyForcibly();
            fail("the child JVM did not exit:\n" + new String(output, StandardCharsets.UTF_8));
        }
        return new Child(process.exitValue(), new String(output, StandardCharsets.UTF_8));
    }

    private static String codeSource(Class<?> c) throws URISyntaxException {
        return Path.of(c.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
    }
}
