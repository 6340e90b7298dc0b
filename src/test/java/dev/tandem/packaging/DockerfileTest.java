package dev.tandem.packaging;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/** No Docker engine runs here, so the image is checked by reading it: structure, then a linter. */
class DockerfileTest {
    static final Path DOCKERFILE = Path.of("docker/Dockerfile");

    @Test
    void multiStageCuda12BuildServingAsNonRoot() throws IOException {
        String d = Files.readString(DOCKERFILE);
        assertTrue(d.matches("(?s).*FROM nvidia/cuda:12\\.[0-9.]+-devel-\\S+ AS build.*"), "build stage on a CUDA 12.x toolkit image");
        assertTrue(d.matches("(?s).*\\nFROM nvidia/cuda:12\\.[0-9.]+-runtime-.*"), "run stage on a CUDA 12.x runtime image");
        assertTrue(d.contains("COPY --from=build /src/target/tandem.jar"), "the jar comes from the build stage");
        assertTrue(d.contains("jlink"), "a trimmed JRE 25 is made with jlink");
        assertTrue(d.matches("(?s).*\\nUSER tandem\\n.*"), "runs as a non-root user");
        assertTrue(d.contains("CMD [\"serve\""), "tandem serve is the default command");
        assertTrue(d.contains("VOLUME [\"/models\"]"), "models are mounted");
        String compose = Files.readString(Path.of("docker/compose.yaml"));
        assertTrue(compose.contains("driver: nvidia") && compose.contains("count: 1") && compose.contains("capabilities: [gpu]"),
                "compose reserves one NVIDIA GPU");
    }

    @Test
    void dockerfilelintFindsNoIssues() throws Exception {
        assumeTrue(onPath("npx"), "npx is not installed: dockerfilelint skipped");
        Process p = new ProcessBuilder("npx", "--yes", "dockerfilelint", DOCKERFILE.toString())
                .redirectErrorStream(true).start();
        boolean done = p.waitFor(180, TimeUnit.SECONDS);
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assumeTrue(done, "dockerfilelint did not finish in time (offline npm registry?)");
        assumeTrue(!out.contains("ERR!") && !out.contains("ENOTFOUND"), "dockerfilelint could not be installed: " + out);
        assertEquals(0, p.exitValue(), out);
        assertTrue(out.contains("None found"), out);
    }

    private static boolean onPath(String cmd) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(java.io.File.pathSeparator)) {
            if (Files.isExecutable(Path.of(dir, cmd))) return true;
        }
        return false;
    }
}
