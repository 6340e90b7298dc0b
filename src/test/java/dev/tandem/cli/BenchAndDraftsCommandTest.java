package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.bench.ReadBandwidth;
import dev.tandem.model.ModelFile;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

class BenchAndDraftsCommandTest {
    @TempDir Path tmp;

    static final Path MAIN = Path.of("test-models/kjv-main-q8_0.gguf");
    static final Path DRAFT = Path.of("test-models/kjv-draft-q8_0.gguf");

    @Test
    void draftsListsCompatibleModelsSmallestFirstAndRejectsOthersWithAReason() throws IOException {
        CliRun run = CliRun.of("drafts", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "--dir", SharedData.root().resolve("models").toString(), "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        JsonNode drafts = report.get("drafts");
        assertTrue(drafts.get(0).get("path").asText().endsWith("kjv-draft-q8_0.gguf"), drafts.get(0).toString());
        assertAscendingAndOnOneSideOfTheMain(drafts, true);
        assertTrue(report.get("not_smaller").size() > 0, "the F32 main model is compatible but larger: " + report);
        assertAscendingAndOnOneSideOfTheMain(report.get("not_smaller"), false);
        boolean sawLlama3 = false;
        for (JsonNode c : report.get("incompatible")) {
            if (c.get("path").asText().contains("llama3")) {
                sawLlama3 = true;
                assertFalse(c.get("reason").asText().isBlank());
            }
        }
        assertTrue(sawLlama3, "the Llama 3 vocabulary is listed as incompatible");
    }

    private static void assertAscendingAndOnOneSideOfTheMain(JsonNode list, boolean smaller) {
        double last = 0;
        for (JsonNode c : list) {
            double ratio = c.get("size_ratio").asDouble();
            assertTrue(ratio >= last, "smallest first: " + list);
            assertEquals(smaller, ratio < 1, c.toString());
            last = ratio;
        }
    }

    @Test
    void draftsListsACopyOfTheMainModelApartAsOneThatCannotMakeDecodingFaster() throws IOException {
        Path draft = Files.copy(DRAFT, tmp.resolve("kjv-draft-q8_0.gguf"));
        Path copy = Files.copy(MAIN, tmp.resolve("copy-of-main.gguf"));
        CliRun run = CliRun.of("drafts", "-m", MAIN.toString(), "--dir", tmp.toString());
        assertEquals(0, run.exitCode(), run.err());
        List<String> lines = run.out().lines().map(String::strip).toList();
        assertEquals(4, lines.size(), run.out());
        assertEquals("drafts (compatible, smaller than the main model), smallest first:", lines.get(0));
        assertTrue(lines.get(1).matches("\\d+\\.\\d % of the main model  " + Pattern.quote(draft.toString())), lines.get(1));
        assertEquals("compatible but not smaller than the main model, so they cannot make decoding faster:", lines.get(2));
        assertEquals("100.0 % of the main model  " + copy, lines.get(3), "sizes count weight bytes on both sides");
    }

    @Test
    void draftsJsonKeepsModelsThatAreNotSmallerOutOfTheDrafts() throws IOException {
        Path draft = Files.copy(DRAFT, tmp.resolve("kjv-draft-q8_0.gguf"));
        Path copy = Files.copy(MAIN, tmp.resolve("copy-of-main.gguf"));
        CliRun run = CliRun.of("drafts", "-m", MAIN.toString(), "--dir", tmp.toString(), "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertEquals(1, report.get("drafts").size(), report.toString());
        assertEquals(draft.toString(), report.get("drafts").get(0).get("path").asText());
        try (ModelFile main = ModelFile.open(MAIN); ModelFile small = ModelFile.open(DRAFT)) {
            assertEquals(small.weightBytes(), report.get("drafts").get(0).get("weight_bytes").asLong());
            assertEquals((double) small.weightBytes() / main.weightBytes(), report.get("drafts").get(0).get("size_ratio").asDouble(), 1e-12);
        }
        assertEquals(1, report.get("not_smaller").size(), report.toString());
        assertEquals(copy.toString(), report.get("not_smaller").get(0).get("path").asText());
        assertEquals(1.0, report.get("not_smaller").get(0).get("size_ratio").asDouble());
        assertEquals(0, report.get("incompatible").size(), report.toString());
    }

    @Test
    void draftsSaysSoWhenNoCompatibleModelIsSmaller() throws IOException {
        Files.copy(MAIN, tmp.resolve("copy-of-main.gguf"));
        CliRun run = CliRun.of("drafts", "-m", MAIN.toString(), "--dir", tmp.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().startsWith("no compatible model under " + tmp + " is smaller than the main model\n"), run.out());
        assertTrue(run.out().contains("100.0 % of the main model  " + tmp.resolve("copy-of-main.gguf")), run.out());
    }

    @Test
    void benchChatTurnsTimesTheSecondTurnWithAndWithoutThePrefixCache() throws IOException {
        Path prompts = tmp.resolve("prompts.txt");
        Files.writeString(prompts, "In the beginning\nAnd it came to pass\n");
        CliRun run = CliRun.of("bench", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "--prompts", prompts.toString(),
                "--chat-turns", "40", "-n", "4", "-t", "1");
        assertEquals(0, run.exitCode(), run.err());
        Matcher row = Pattern.compile("\\| 1 \\| 40 \\| (\\d+) \\| (\\d+) \\| [0-9.]+ \\| [0-9.]+ \\| [0-9.]+x \\| yes \\|").matcher(run.out());
        assertTrue(row.find(), run.out());
        assertEquals(32, Integer.parseInt(row.group(2)), "the first turn's 40 prompt and 3 of its 4 reply tokens, in whole blocks: " + run.out());
        assertTrue(run.out().contains("median time to first token of the second turn"), run.out());
    }

    /** --ctx and --backend are usage errors here as in every other bench, before any model is loaded. */
    @Test
    void benchChatTurnsChecksContextAndBackendFirst() {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString();
        CliRun ctx = CliRun.of("bench", "-m", main, "--chat-turns", "40", "--ctx", "0");
        assertEquals(UserErrors.USAGE, ctx.exitCode(), ctx.err());
        assertTrue(ctx.failedWithOneLine() && ctx.err().contains("--ctx must be at least 1, got 0"), ctx.err());
        CliRun backend = CliRun.of("bench", "-m", main, "--chat-turns", "40", "--backend", "tpu");
        assertEquals(UserErrors.USAGE, backend.exitCode(), backend.err());
        assertTrue(backend.failedWithOneLine() && backend.err().contains("--backend: "), backend.err());
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
        assertTrue(report.get("plain_tokens_per_second").asDouble() > 0, "plain decoding over all the plain runs");
        assertSaneBandwidthLimit(report, SharedData.kjv("kjv-main-q8_0.gguf"));
    }

    @Test
    void benchWithADraftStatesThePlainRunsAgainstTheBandwidthLimitUnderTheTable() {
        CliRun run = CliRun.of("bench", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "--draft", SharedData.kjv("kjv-draft-q8_0.gguf").toString(),
                "-n", "8", "--draft-max", "2", "--no-adaptive", "-t", "2");
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(PLAIN_LINE.matcher(run.out()).find(), run.out());
        assertTrue(run.out().contains("the plain runs of 1 configuration, 6 prompts x 8 tokens each, 2 threads"), run.out());
        assertTrue(run.out().contains("read bandwidth: "), run.out());
    }

    /** "plain decoding: 5.67 tok/s (...) = 71 % of the read-bandwidth limit (7.98 tok/s: 3.41 GB per token at 27.2 GB/s)" */
    private static final Pattern PLAIN_LINE = Pattern.compile(
            "plain decoding: [0-9.]+ tok/s \\(.*threads\\) = ([0-9.]+) % of the read-bandwidth limit \\(([0-9.]+) tok/s: [0-9.]+ [MG]B per token at ([0-9.]+) GB/s\\)");

    private static void assertSaneBandwidthLimit(JsonNode report, Path model) {
        double bandwidth = report.get("read_bandwidth_gb_per_s").asDouble();
        assertTrue(bandwidth > 0, report.toString());
        assertTrue(report.get("read_bandwidth_gb_per_s_before").asDouble() > 0);
        assertTrue(report.get("read_bandwidth_gb_per_s_after").asDouble() > 0);
        long bytes = report.get("bytes_per_token").asLong();
        try (ModelFile file = ModelFile.open(model)) {
            assertEquals(ReadBandwidth.bytesPerToken(file), bytes);
            assertTrue(bytes > 0 && bytes <= file.weightBytes());
        }
        assertEquals(bandwidth * 1e9 / bytes, report.get("limit_tokens_per_second").asDouble(), 1e-9 * bandwidth * 1e9 / bytes);
        double percent = report.get("percent_of_limit").asDouble();
        assertTrue(percent > 0, report.toString());
        assertEquals(100 * report.get("plain_tokens_per_second").asDouble() / report.get("limit_tokens_per_second").asDouble(), percent, 1e-6 * percent);
    }

    @Test
    void benchWithoutADraftMeasuresPlainDecoding() throws IOException {
        CliRun run = CliRun.of("bench", "-m", SharedData.kjv("kjv-draft-q8_0.gguf").toString(), "-n", "8", "-t", "1", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertTrue(report.get("plain_tokens_per_second").asDouble() > 0);
        assertEquals(8, report.get("pass_cost").size());
        assertSaneBandwidthLimit(report, SharedData.kjv("kjv-draft-q8_0.gguf"));
    }

    @Test
    void benchWithoutADraftStatesPlainDecodingAgainstTheBandwidthLimit() {
        CliRun run = CliRun.of("bench", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "-n", "8", "-t", "2");
        assertEquals(0, run.exitCode(), run.err());
        Matcher m = PLAIN_LINE.matcher(run.out());
        assertTrue(m.find(), run.out());
        assertTrue(Double.parseDouble(m.group(1)) > 0, m.group());
        assertTrue(Double.parseDouble(m.group(2)) > 0 && Double.parseDouble(m.group(3)) > 0, m.group());
        assertTrue(run.out().contains("read bandwidth: "), run.out());
        assertTrue(run.out().contains("2 threads"), run.out());
    }
}
