package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.Tandem;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defect 6 and the CLI half of defect 2: flags a hostile or careless user gives get one line and a
 * non-zero exit, never a hang, a JVM error, a replaced device node or a leftover partial file. Timeouts bound hangs.
 */
class HostileCliTest {
    static final String MAIN = "test-models/kjv-main-q8_0.gguf";
    static final Duration HANG_GUARD = Duration.ofSeconds(60);
    static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path tmp;

    @Test
    void ctxCapsGenerationAtTheContext() throws IOException {
        CliRun run = CliRun.of("generate", "-m", MAIN, "-p", "In the beginning", "--ctx", "8", "-n", "20", "--temperature", "0",
                "--threads", "1", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode out = JSON.readTree(run.out());
        int prompt = out.get("prompt_tokens").size();
        assertTrue(prompt < 8, "the prompt fits: " + prompt);
        assertEquals(8 - prompt, out.get("tokens").size(), "generation stops where the 8 positions are full");
        assertEquals("max_tokens", out.get("stop_reason").asText());
    }

    @Test
    void aPromptThatFillsTheCtxIsAnError() {
        CliRun run = CliRun.of("generate", "-m", MAIN, "-p", "In the beginning God created the heaven", "--ctx", "4", "-n", "5",
                "--threads", "1");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("4"), run.err());
    }

    @Test
    void benchRefusesPromptsThatDoNotFitTheCtx() {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--ctx", "16", "-n", "32", "--threads", "1", "--json");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine() && run.err().contains("16"), run.err());
    }

    @Test
    void aFifoIsNotAModel() throws Exception {
        Path fifo = tmp.resolve("model.gguf");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        for (String[] args : List.of(new String[] {"generate", "-m", fifo.toString(), "-p", "x"},
                new String[] {"info", "-m", fifo.toString()},
                new String[] {"generate", "-m", MAIN, "--draft", fifo.toString(), "-p", "x"},
                new String[] {"serve", "-m", fifo.toString(), "--port", "0"})) {
            CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of(args), "hang guard: opening a FIFO blocks forever");
            assertEquals(1, run.exitCode(), String.join(" ", args) + ": " + run.err());
            assertTrue(run.failedWithOneLine(), run.err());
            assertTrue(run.err().contains("not a regular file"), run.err());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"generate", "bench", "serve"})
    void threadsHaveAnUpperBoundNamedInTheError(String command) {
        int max = RuntimeOptions.maxThreads();
        List<String> args = new ArrayList<>(List.of(command, "-m", MAIN, "--threads", "10000"));
        if (command.equals("generate")) args.addAll(List.of("-p", "x"));
        if (command.equals("serve")) args.addAll(List.of("--port", "0"));
        CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of(args.toArray(String[]::new)), "hang guard: a serve that starts runs until stopped");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains(Integer.toString(max)) && run.err().contains("10000"), run.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"--temperature=Infinity", "--temperature=NaN", "--top-p=NaN", "--min-p=-Infinity",
            "--repeat-penalty=Infinity", "--draft-p-min=NaN"})
    void nonFiniteSamplingValuesAreRefusedAlike(String flag) {
        CliRun run = CliRun.of("generate", "-m", MAIN, "-p", "x", "-n", "1", flag);
        assertEquals(2, run.exitCode(), flag + ": " + run.err());
        assertTrue(run.err().contains(flag.substring(0, flag.indexOf('='))), run.err());
    }

    @Test
    void benchRefusesANonFiniteDraftPMin() {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", "ngram", "--draft-p-min", "NaN", "-n", "1");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--draft-p-min"), run.err());
    }

    @Test
    void aKvBudgetBeyondTheMemoryNamesBothNumbers() {
        long tooMuch = Runtime.getRuntime().maxMemory() * 4;
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Tandem.builder().model(Path.of(MAIN)).backend("cpu").threads(1).kvMemory(tooMuch).build().close());
        assertTrue(e.getMessage().contains("K/V") && e.getMessage().contains("heap"), e.getMessage());
        CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of("serve", "-m", MAIN, "--port", "0", "--backend", "cpu", "--kv-memory", "64G"),
                "hang guard: a serve that starts runs until stopped");
        assertEquals(1, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine() && run.err().contains("64.0 GiB"), run.err());
    }

    @ParameterizedTest
    @ValueSource(strings = {"soon", "-5s", "2d", "1e3s", "", "25h"})
    void serveRefusesADrainTimeoutThatIsNotADuration(String value) {
        CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of("serve", "-m", MAIN, "--port", "0", "--drain-timeout", value),
                "hang guard: a serve that starts runs until stopped");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine() && run.err().contains("--drain-timeout") && run.err().contains("'" + value + "'"), run.err());
    }

    @Test
    void drainTimeoutsReadAsSecondsMillisecondsOrMinutes() {
        assertEquals(java.time.Duration.ofSeconds(30), ServeCommand.parseDuration("--drain-timeout", "30s"));
        assertEquals(java.time.Duration.ofSeconds(30), ServeCommand.parseDuration("--drain-timeout", "30"));
        assertEquals(java.time.Duration.ofMillis(500), ServeCommand.parseDuration("--drain-timeout", "500ms"));
        assertEquals(java.time.Duration.ofMillis(1500), ServeCommand.parseDuration("--drain-timeout", "1.5s"));
        assertEquals(java.time.Duration.ofMinutes(2), ServeCommand.parseDuration("--drain-timeout", "2m"));
        assertEquals(java.time.Duration.ZERO, ServeCommand.parseDuration("--drain-timeout", "0"));
    }

    @Test
    void serveTakesTheApiKeyFromAFileOrTheEnvironment() throws IOException {
        Path file = tmp.resolve("key");
        Files.writeString(file, "sesame\n");
        assertEquals("sesame", ServeCommand.apiKey(null, file, Map.of()), "the file's first line, without its newline");
        assertEquals("open", ServeCommand.apiKey(null, null, Map.of(ServeCommand.API_KEY_VARIABLE, "open")));
        assertEquals("flag", ServeCommand.apiKey("flag", null, Map.of(ServeCommand.API_KEY_VARIABLE, "open")), "a flag wins over the environment");
        assertNull(ServeCommand.apiKey(null, null, Map.of()));
        assertThrows(UsageException.class, () -> ServeCommand.apiKey("flag", file, Map.of()), "not both flags");
        Files.writeString(file, "\n");
        assertThrows(UserInputException.class, () -> ServeCommand.apiKey(null, file, Map.of()), "an empty key");
        assertThrows(UserInputException.class, () -> ServeCommand.apiKey(null, tmp.resolve("missing"), Map.of()));
        assertThrows(UsageException.class, () -> ServeCommand.apiKey(null, null, Map.of(ServeCommand.API_KEY_VARIABLE, "")));
    }

    @Test
    void forgeReplacesOnlyARegularFile() throws Exception {
        Path fifo = tmp.resolve("out.gguf");
        assertEquals(0, new ProcessBuilder("mkfifo", fifo.toString()).start().waitFor());
        Path dir = tmp.resolve("folder");
        Files.createDirectory(dir);
        Path link = tmp.resolve("link.gguf");
        Files.createSymbolicLink(link, tmp.resolve("elsewhere.gguf"));
        // Never a real device here: on code without the check, a test run as root would replace it.
        for (Path out : List.of(fifo, link)) {
            CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of("forge", "--out", out.toString(), "--quiet"));
            assertEquals(2, run.exitCode(), out + ": " + run.err());
            assertTrue(run.err().contains("not a regular file"), run.err());
        }
        assertTrue(Files.isSymbolicLink(link) && !Files.exists(tmp.resolve("elsewhere.gguf")), "the link is still a link");
        assertFalse(Files.isRegularFile(fifo, LinkOption.NOFOLLOW_LINKS), "the FIFO is still a FIFO");
        Path partialLink = tmp.resolve("m.gguf.partial");
        Files.createSymbolicLink(partialLink, tmp.resolve("victim"));
        CliRun run = CliRun.of("forge", "--out", tmp.resolve("m.gguf").toString(), "--quiet");
        assertNotEquals(0, run.exitCode(), "a .partial that is a link is not written through");
        assertFalse(Files.exists(tmp.resolve("victim")));
        Files.delete(partialLink);
        Path regular = tmp.resolve("m.gguf");
        Files.writeString(regular, "old");
        assertEquals(0, CliRun.of("forge", "--out", regular.toString(), "--quiet").exitCode(), "a regular file is replaced");
        assertTrue(Files.size(regular) > 1000);
    }

    @Test
    void forgeBoundsItsSizes() {
        for (String[] flags : List.of(new String[] {"--vocab", "2147483647"}, new String[] {"--hidden", "1073741824"},
                new String[] {"--layers", "100000"}, new String[] {"--context", "2147483647"}, new String[] {"--ffn", "2147483392"})) {
            CliRun run = assertTimeoutPreemptively(HANG_GUARD, () -> CliRun.of("forge", "--out", tmp.resolve("m.gguf").toString(), "--quiet",
                    flags[0], flags[1]));
            assertEquals(2, run.exitCode(), String.join(" ", flags) + ": " + run.err());
            assertTrue(run.err().contains(flags[0]) && run.err().contains(flags[1]), run.err());
        }
    }

    /** A forge killed by a signal (SIGTERM, as a Ctrl-C or a service stop sends) removes its partial file. */
    @Test
    void aKilledForgeLeavesNoPartialFile() throws Exception {
        Path out = tmp.resolve("big.gguf");
        Path partial = tmp.resolve("big.gguf.partial");
        String java = ProcessHandle.current().info().command().orElse("java");
        Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"),
                "dev.tandem.cli.Main", "forge", "--preset", "llama-3.2-1b", "--type", "f32", "--quiet", "--out", out.toString())
                .redirectErrorStream(true).redirectOutput(tmp.resolve("forge.log").toFile()).start();
        try {
            assertTimeoutPreemptively(HANG_GUARD, () -> {
                while (!(Files.exists(partial) && Files.size(partial) > 0)) {
                    if (!p.isAlive()) fail("forge ended before writing: " + Files.readString(tmp.resolve("forge.log")));
                    Thread.sleep(20);
                }
            });
            p.destroy();       // SIGTERM
            assertTrue(p.waitFor(HANG_GUARD.toSeconds(), TimeUnit.SECONDS));
            assertFalse(Files.exists(partial), "the partial file is removed");
            assertFalse(Files.exists(out), "nothing was moved into place");
        } finally {
            p.destroyForcibly();
        }
    }
}
