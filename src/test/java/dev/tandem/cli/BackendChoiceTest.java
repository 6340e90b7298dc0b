package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.engine.Backends;
import dev.tandem.engine.Engine;
import dev.tandem.engine.Tandem;
import dev.tandem.runtime.cuda.UnsupportedWeightException;
import dev.tandem.server.OpenAiServer;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Which backend a command runs on, and why, as users see it: {@code --backend cuda} without a GPU is one line naming
 * what is missing; {@code auto} says once on stderr that it fell back and runs; {@code serve} names its backend at
 * startup and in /health.
 */
class BackendChoiceTest {
    static final String MODEL = SharedData.kjv("kjv-draft-q8_0.gguf").toString();

    static String noGpuReason() {
        String reason = Backends.cudaUnavailableReason();
        assumeTrue(reason != null, "this machine has a usable CUDA device");
        return reason;
    }

    @Test
    void cudaWithoutADriverIsOneLineNamingWhatIsMissing() {
        String reason = noGpuReason();
        CliRun run = CliRun.of("generate", "-m", MODEL, "-p", "In the beginning", "-n", "2", "-t", "1", "--backend", "cuda");
        assertEquals(1, run.exitCode(), run.err());
        assertEquals("tandem generate: CUDA unavailable: " + reason, run.err().strip());
        assertTrue(run.failedWithOneLine(), run.err());
        assertEquals("", run.out());
    }

    @Test
    void autoSaysOnceOnStderrWhyItUsesTheCpuAndGenerates() {
        String reason = noGpuReason();
        CliRun run = CliRun.of("generate", "-m", MODEL, "-p", "In the beginning", "-n", "4", "-t", "1", "--temperature", "0", "--backend", "auto");
        assertEquals(0, run.exitCode(), run.err());
        String line = "CUDA unavailable: " + reason + "; using the CPU";
        assertEquals(1, run.err().lines().filter(line::equals).count(), run.err());
        assertFalse(run.out().contains("CUDA"), "the reason stays off stdout: " + run.out());
        assertFalse(run.out().isBlank());
    }

    @Test
    void anUnknownBackendIsAUsageError() {
        CliRun run = CliRun.of("generate", "-m", MODEL, "-p", "x", "--backend", "tpu");
        assertEquals(2, run.exitCode(), run.err());
        assertTrue(run.err().contains("--backend: unknown backend 'tpu' (known: auto, cpu, cuda, cuda-host)"), run.err());
    }

    @Test
    void backendFailuresAndCudaErrorsAreUserErrorsNotInternalOnes() {
        assertEquals("tensor 'x' has type Q5_0", UserErrors.userMessage(new UnsupportedWeightException("tensor 'x' has type Q5_0")));
        assertEquals("CUDA unavailable: no CUDA device found",
                UserErrors.userMessage(new dev.tandem.runtime.BackendUnavailableException("CUDA unavailable: no CUDA device found")));
        // JCuda's exception, as a cause too: matched by class name (its classes load only where libcuda.so.1 does).
        assertEquals("CUDA error: CUDA_ERROR_OUT_OF_MEMORY",
                UserErrors.userMessage(new IllegalStateException("pass failed", new jcuda.CudaException("CUDA_ERROR_OUT_OF_MEMORY"))));
        assertEquals(null, UserErrors.userMessage(new IllegalStateException("a bug")));
    }

    @Test
    void serveNamesItsBackendAndWhyAutoFellBackOneLineEach() {
        String reason = noGpuReason();
        try (Engine engine = Tandem.builder().model(java.nio.file.Path.of(MODEL)).threads(1).parallel(1).build()) {
            StringWriter out = new StringWriter(), err = new StringWriter();
            ServeCommand.announce(engine, "http://127.0.0.1:8080", new PrintWriter(out), new PrintWriter(err));
            assertEquals("tandem serve: CUDA unavailable: " + reason + "; using the CPU\n", err.toString());
            assertEquals("tandem serve: backend cpu (CPU, 1 thread)\ntandem serve: kjv-draft-q8_0 at http://127.0.0.1:8080/v1  (Ctrl-C to stop)\n",
                    out.toString());
        }
        try (Engine engine = Tandem.builder().model(java.nio.file.Path.of(MODEL)).backend("cpu").threads(2).parallel(1).build()) {
            StringWriter out = new StringWriter(), err = new StringWriter();
            ServeCommand.announce(engine, "http://h:1", new PrintWriter(out), new PrintWriter(err));
            assertEquals("", err.toString(), "a backend asked for by name needs no reason");
            assertTrue(out.toString().startsWith("tandem serve: backend cpu (CPU, 2 threads)\n"), out.toString());
        }
    }

    @Test
    void healthSaysWhichBackendServesAndWhy() throws Exception {
        String reason = noGpuReason();
        try (Engine engine = Tandem.builder().model(java.nio.file.Path.of(MODEL)).threads(1).parallel(1).build()) {
            OpenAiServer server = new OpenAiServer(engine, OpenAiServer.Options.defaults().withPort(0)).start();
            try (HttpClient http = HttpClient.newHttpClient()) {
                HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(server.url() + "/health")).build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(200, r.statusCode());
                JsonNode health = new ObjectMapper().readTree(r.body());
                assertEquals("ok", health.get("status").asText());
                assertEquals("cpu", health.get("backend").asText());
                assertEquals("CPU, 1 thread", health.get("device").asText());
                assertEquals("CUDA unavailable: " + reason + "; using the CPU", health.get("backend_fallback").asText());
            } finally {
                server.close();
            }
        }
    }
}
