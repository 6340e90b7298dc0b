package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.MatchResult;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code tandem bench --parallel} on the KJV pair: the table's shape, its counts, the greedy exactness check, and the
 * one-line errors of bad input. No speed is asserted.
 */
class BenchParallelCommandTest {
    @TempDir Path tmp;

    private static final String MAIN = SharedData.kjv("kjv-main-q8_0.gguf").toString();
    private static final String DRAFT = SharedData.kjv("kjv-draft-q8_0.gguf").toString();

    /** "| P | tokens | plain | spec | ratio x | plain/req | spec/req | plain passes | spec passes | draft passes | accepted % | equal/equal |" */
    private static final Pattern ROW = Pattern.compile(
            "\\| (\\d+) \\| (\\d+) \\| ([0-9.]+) \\| ([0-9.]+) \\| ([0-9.]+)x \\| ([0-9.]+) \\| ([0-9.]+) \\| ([0-9.]+) \\| ([0-9.]+) \\| ([0-9.]+) \\| ([0-9.]+) % \\| (\\d+)/(\\d+) \\|");

    @Test
    void reportsPlainAndSpeculativeAtEachConcurrencyWithOutputsCheckedEqual() throws IOException {
        Path table = tmp.resolve("parallel.md");
        int tokens = 8, rounds = 2;
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", DRAFT, "--parallel", "1,2", "-n", Integer.toString(tokens),
                "--repeats", Integer.toString(rounds), "--draft-max", "3", "-t", "1", "--backend", "cpu", "--out", table.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(run.out(), Files.readString(table), "--out holds what was printed");
        assertTrue(run.out().contains("| parallel | tokens/round | plain tok/s | speculative tok/s | spec/plain |"), run.out());
        assertTrue(run.out().contains("speculative with kjv-draft-q8_0 (draft-max 3, p-min 0)"), run.out());
        List<MatchResult> rows = ROW.matcher(run.out()).results().toList();
        assertEquals(2, rows.size(), run.out());
        for (int i = 0; i < 2; i++) {
            MatchResult row = rows.get(i);
            int p = Integer.parseInt(row.group(1));
            assertEquals(i + 1, p, "one row per concurrency, in the order given");
            assertEquals(p * tokens, Long.parseLong(row.group(2)), "a round generates P x max tokens: " + row.group());
            double plain = Double.parseDouble(row.group(3)), speculative = Double.parseDouble(row.group(4));
            assertTrue(plain > 0 && speculative > 0, row.group());
            assertEquals(p * rounds, Integer.parseInt(row.group(12)), "every speculative output compared with plain: " + row.group());
            assertEquals(row.group(12), row.group(13));
            double plainPasses = Double.parseDouble(row.group(8)), speculativePasses = Double.parseDouble(row.group(9));
            // One prefill pass per request, then the decode steps: all P requests share one pass per step when batched.
            assertTrue(plainPasses >= p + tokens - 1 && plainPasses <= p * tokens, "plain main passes " + row.group());
            // Every verification pass emits at least one token per request, so speculation never needs more passes.
            assertTrue(speculativePasses >= p + 1 && speculativePasses <= plainPasses, "speculative main passes " + row.group());
            // The P sequences draft together: at most draft-max draft passes per verification pass, prefills apart.
            double draftPasses = Double.parseDouble(row.group(10));
            assertTrue(draftPasses > 0 && draftPasses <= 3 * speculativePasses, "draft passes " + row.group());
        }
        assertEquals(tokens, Double.parseDouble(rows.get(0).group(8)), "a lone plain request: one prefill, then a pass per further token");
    }

    @Test
    void moreConcurrentRequestsThanTheEngineDefaultAllGetABatchSlotAndJsonHasTheRows() throws IOException {
        // The engine's default is 4 slots and the bench's engine has no queue: a fifth request would fail the run.
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", DRAFT, "--parallel", "5", "-n", "4", "-t", "1", "--backend", "cpu", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        JsonNode row = report.get("rows").get(0);
        assertEquals(5, row.get("parallel").asInt());
        assertEquals(20, row.get("tokens_per_round").asLong());
        assertEquals(5, row.get("same_output_as_plain").asInt());
        assertTrue(row.get("speculative_draft_passes").asDouble() > 0, row.toString());
        assertEquals(row.get("speculative_tokens_per_second").asDouble() / row.get("plain_tokens_per_second").asDouble(),
                row.get("speculative_over_plain").asDouble(), 1e-9, "with one round the ratio is the medians' ratio");
        assertTrue(report.get("setup").asText().startsWith("kjv-main-q8_0, speculative with kjv-draft-q8_0 (draft-max 4, p-min 0)"), report.toString());
    }

    @Test
    void promptLookupServesAsTheDraftToo() throws IOException {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", "ngram", "--parallel", "2", "-n", "8", "-t", "1", "--backend", "cpu", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertTrue(report.get("setup").asText().contains("speculative with ngram (draft-max 4, p-min 0)"), report.toString());
        assertEquals(2, report.get("rows").get(0).get("same_output_as_plain").asInt());
        assertTrue(report.get("rows").get(0).get("speculative_draft_passes").isNull(), "prompt lookup runs no model: " + report);
    }

    @Test
    void promptsAndTokensThatDoNotFitTheContextAreRefusedBeforeLoading() {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", DRAFT, "--parallel", "1", "--ctx", "16", "-n", "32", "-t", "1");
        assertEquals(UserErrors.FAILURE, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("new tokens need") && run.err().contains("positions but the context holds 16"), run.err());
    }

    @Test
    void adaptiveRoundsChooseTheirDraftLengthsAndStillEqualPlain() throws IOException {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", DRAFT, "--parallel", "1,4", "--adaptive", "-n", "8", "-t", "1", "--backend", "cpu", "--json");
        assertEquals(0, run.exitCode(), run.err());
        JsonNode report = new ObjectMapper().readTree(run.out());
        assertTrue(report.get("setup").asText().contains("speculative with kjv-draft-q8_0 (adaptive draft length up to 4, chosen for the batch)"), report.toString());
        assertEquals(1, report.get("rows").get(0).get("same_output_as_plain").asInt());
        assertEquals(4, report.get("rows").get(1).get("same_output_as_plain").asInt());
    }

    @Test
    void adaptiveIsForTheParallelBench() {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", DRAFT, "--adaptive", "-n", "4");
        assertEquals(UserErrors.USAGE, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("--adaptive goes with --parallel"), run.err());
    }

    /** --ctx is checked before the prompts are measured against it, by the sequential bench as by --parallel. */
    @Test
    void aContextBelowOneIsAUsageErrorInEitherBench() {
        assertUsageError("--ctx must be at least 1, got 0", "--parallel", "1", "--ctx", "0");
        assertUsageError("--ctx must be at least 1, got 0", "--ctx", "0");
    }

    @Test
    void aConcurrencyBelowOneIsAUsageError() {
        assertUsageError("--parallel values must be at least 1, got 0", "--parallel", "1,0");
    }

    @Test
    void aConcurrencyThatIsNotANumberIsAUsageError() {
        assertUsageError("'x' is not an int", "--parallel", "x");
    }

    @Test
    void theSpeculativeRowsNeedADraft() {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--parallel", "1", "-n", "4");
        assertEquals(UserErrors.USAGE, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("--parallel compares plain with speculative decoding: give the draft with --draft MODEL"), run.err());
    }

    @Test
    void oneDraftLengthOnly() {
        assertUsageError("--parallel takes one --draft-max, got [2, 4]", "--parallel", "1", "--draft-max", "2,4");
    }

    @Test
    void eachConcurrentRequestNeedsItsOwnPrompt() {
        assertUsageError("--parallel 17 needs 17 distinct prompts but there are 16 built in", "--parallel", "1,17");
    }

    @Test
    void aMissingDraftFileFailsInOneLine() {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", tmp.resolve("absent.gguf").toString(), "--parallel", "1", "-n", "4", "-t", "1");
        assertEquals(UserErrors.FAILURE, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("absent.gguf"), run.err());
    }

    @Test
    void anOutFileInAMissingFolderFailsBeforeTheRun() {
        CliRun run = CliRun.of("bench", "-m", MAIN, "--draft", DRAFT, "--parallel", "1", "-n", "4", "--out", tmp.resolve("no/such/t.md").toString());
        assertEquals(UserErrors.FAILURE, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("--out: folder " + tmp.resolve("no/such") + " does not exist"), run.err());
    }

    @Test
    void outIsForTheParallelTableOnly() {
        assertUsageError("--out writes the --parallel table", "--out", tmp.resolve("t.md").toString());
    }

    private static void assertUsageError(String message, String... flags) {
        List<String> args = new ArrayList<>(List.of("bench", "-m", MAIN, "--draft", DRAFT, "-n", "4"));
        args.addAll(List.of(flags));
        CliRun run = CliRun.of(args.toArray(String[]::new));
        assertEquals(UserErrors.USAGE, run.exitCode(), run.err());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains(message), run.err());
    }

}
