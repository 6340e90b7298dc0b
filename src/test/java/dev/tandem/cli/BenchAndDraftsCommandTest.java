package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

class BenchAndDraftsCommandTest {
    @TempDir Path tmp;

    @Test
    void draftsListsCompatibleModelsSmallestFirstAndRejectsOthersWithAReason() throws IOException {
        CliRun run = CliRun.of("drafts", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "--dir", SharedData.root().resolve("models").toString(), "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode list = new ObjectMapper().readTree(run.out()).get("candidates");
        assertTrue(list.get(0).get("compatible").asBoolean());
        assertTrue(list.get(0).get("path").asText().endsWith("kjv-draft-q8_0.gguf"), list.get(0).toString());
        boolean sawLlama3 = false;
        double last = 0;
        for (JsonNode c : list) {
            if (c.get("compatible").asBoolean()) {
                assertTrue(c.get("size_ratio").asDouble() >= last, "smallest compatible first");
                last = c.get("size_ratio").asDouble();
            } else if (c.get("path").asText().contains("llama3")) {
                sawLlama3 = true;
                assertFalse(c.get("reason").asText().isBlank());
            }
        }
        assertTrue(sawLlama3, "the Llama 3 vocabulary is listed as incompatible");
    }

    @Test
    void benchWithADraftReportsEveryDraftLength() throws IOException {
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, "In the beginning\nAnd it came to pass\n");
        Path png = tmp.resolve("bench.png");
        CliRun run = CliRun.of("bench", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "--draft", SharedData.kjv("kjv-draft-q8_0.gguf").toString(),
                "--prompts", prompts.toString(), "-n", "16", "--draft-max", "2,4", "-t", "1", "--json", "--plot", png.toString());
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertEquals(3, report.get("runs").size(), "draft-max 2, 4 and adaptive");
        for (JsonNode r : report.get("runs")) {
            for (String key : new String[] {"draft_max", "plain_tokens_per_second", "spec_tokens_per_second", "speedup", "acceptance_rate", "mean_accepted_length"}) {
                assertTrue(r.has(key), key + " in " + r);
            }
        }
        assertTrue(Files.size(png) > 1000, "a PNG plot was written");
    }

    @Test
    void benchWithoutADraftMeasuresPlainDecoding() throws IOException {
        CliRun run = CliRun.of("bench", "-m", SharedData.kjv("kjv-draft-q8_0.gguf").toString(), "-n", "8", "-t", "1", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertTrue(report.get("plain_tokens_per_second").asDouble() > 0);
        assertEquals(8, report.get("pass_cost").size());
    }
}
