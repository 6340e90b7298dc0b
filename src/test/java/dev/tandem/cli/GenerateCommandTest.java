package dev.tandem.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** {@code tandem generate} end to end: the prompt tokenised as the reference engine does, greedy tokens, JSON stats. */
class GenerateCommandTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static JsonNode generate(String... args) throws IOException {
        CliRun run = CliRun.of(args);
        assertEquals(0, run.exitCode(), run.err());
        return JSON.readTree(run.out());
    }

    @Test
    void greedyJsonOutputIsTheReferenceContinuation() throws IOException {
        List<Generation> refs = ReferenceRecords.generations("kjv-main-f32.jsonl");
        for (Generation g : refs.subList(0, 3)) {
            JsonNode out = generate("generate", "--model", SharedData.kjv("kjv-main-f32.gguf").toString(), "--prompt=" + g.prompt(),
                    "--max-tokens", "24", "--temperature", "0", "--threads", "1", "--json");
            assertArrayEquals(g.promptTokens(), ReferenceRecords.ints(out.get("prompt_tokens")), g.prompt());
            int[] tokens = ReferenceRecords.ints(out.get("tokens"));
            assertArrayEquals(java.util.Arrays.copyOf(g.tokens(), 24), tokens, g.prompt());
            assertTrue(g.text().startsWith(out.get("text").asText()), out.get("text").asText());
            assertEquals(24, out.get("stats").get("predicted_n").asInt());
            assertTrue(out.get("stats").get("tokens_per_second").asDouble() > 0);
        }
    }

    @Test
    void speculativeGreedyEqualsPlainAndReportsDraftStats() throws IOException {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString(), draft = SharedData.kjv("kjv-draft-q8_0.gguf").toString();
        JsonNode plain = generate("generate", "-m", main, "-p", "And it came to pass", "-n", "48", "--temperature", "0", "-t", "1", "--json");
        JsonNode spec = generate("generate", "-m", main, "-p", "And it came to pass", "-n", "48", "--temperature", "0", "-t", "1",
                "--draft", draft, "--draft-max", "4", "--draft-p-min", "0", "--json");
        assertEquals(plain.get("tokens"), spec.get("tokens"));
        JsonNode s = spec.get("stats");
        assertTrue(s.get("total_draft_tokens_count").asInt() > 0);
        assertEquals(s.get("total_draft_tokens_count").asInt(), s.get("accepted_draft_tokens_count").asInt()
                + s.get("rejected_draft_tokens_count").asInt() + s.get("ignored_draft_tokens_count").asInt());
        assertEquals(s.get("draft_n_accepted"), s.get("accepted_draft_tokens_count"));
        JsonNode ngram = generate("generate", "-m", main, "-p", "And it came to pass", "-n", "48", "--temperature", "0", "-t", "1",
                "--draft", "ngram", "--json");
        assertEquals(plain.get("tokens"), ngram.get("tokens"));
    }

    /** {@code --color} shows in green exactly the tokens accepted from the draft, and the text is the plain run's. */
    @Test
    void colorMarksExactlyTheAcceptedDraftTokens() {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString(), draft = SharedData.kjv("kjv-draft-q8_0.gguf").toString();
        CliRun plain = CliRun.of("generate", "-m", main, "-p", "And it came to pass", "-n", "48", "--temperature", "0", "-t", "1");
        CliRun colored = CliRun.of("generate", "-m", main, "-p", "And it came to pass", "-n", "48", "--temperature", "0", "-t", "1",
                "--draft", draft, "--draft-max", "4", "--draft-p-min", "0", "--color");
        assertEquals(0, colored.exitCode(), colored.err());
        java.util.regex.Matcher accepted = java.util.regex.Pattern.compile("accepted (\\d+) ").matcher(colored.err());
        assertTrue(accepted.find(), colored.err());
        int green = colored.out().split(java.util.regex.Pattern.quote(ChunkPrinter.GREEN), -1).length - 1;
        assertTrue(green > 0, colored.out());
        assertEquals(Integer.parseInt(accepted.group(1)), green, colored.out());
        assertEquals(green, colored.out().split(java.util.regex.Pattern.quote(ChunkPrinter.RESET), -1).length - 1);
        assertEquals(plain.out(), colored.out().replace(ChunkPrinter.GREEN, "").replace(ChunkPrinter.RESET, ""));
    }

    /** The keys of {@code --json} (as before the CLI ran on the engine), and the figures agreeing with each other. */
    @Test
    void jsonKeysAndStatsAgree() throws IOException {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString(), draft = SharedData.kjv("kjv-draft-q8_0.gguf").toString();
        List<String> statsKeys = List.of("prompt_n", "prompt_ms", "predicted_n", "predicted_ms", "tokens_per_second", "time_to_first_token",
                "total_draft_tokens_count", "accepted_draft_tokens_count", "rejected_draft_tokens_count", "ignored_draft_tokens_count",
                "draft_n", "draft_n_accepted", "verification_passes", "acceptance_rate", "mean_accepted_length",
                "accepted_length_histogram", "draft_ms", "verify_ms");
        JsonNode plain = generate("generate", "-m", main, "-p", "And it came to pass", "-n", "16", "--temperature", "0", "-t", "1", "--json");
        JsonNode spec = generate("generate", "-m", main, "-p", "And it came to pass", "-n", "16", "--temperature", "0", "-t", "1",
                "--draft", draft, "--draft-max", "4", "--draft-p-min", "0", "--json");
        for (JsonNode out : List.of(plain, spec)) {
            assertEquals(List.of("prompt_tokens", "tokens", "text", "stop_reason", "stats"), fieldNames(out));
            JsonNode s = out.get("stats");
            assertEquals(statsKeys, fieldNames(s));
            assertEquals("max_tokens", out.get("stop_reason").asText());
            assertEquals(out.get("prompt_tokens").size(), s.get("prompt_n").asInt());
            assertEquals(out.get("tokens").size(), s.get("predicted_n").asInt());
            assertEquals(s.get("predicted_n").asDouble() * 1000 / s.get("predicted_ms").asDouble(), s.get("tokens_per_second").asDouble(), 1e-6);
            assertEquals(s.get("total_draft_tokens_count").asInt() - s.get("ignored_draft_tokens_count").asInt(), s.get("draft_n").asInt());
            long passes = 0, accepted = 0;
            for (int i = 0; i < s.get("accepted_length_histogram").size(); i++) {
                passes += s.get("accepted_length_histogram").get(i).asLong();
                accepted += i * s.get("accepted_length_histogram").get(i).asLong();
            }
            assertEquals(s.get("verification_passes").asLong(), passes);
            assertEquals(s.get("accepted_draft_tokens_count").asLong(), accepted);
        }
        assertEquals(0, plain.get("stats").get("verification_passes").asInt());
        assertTrue(spec.get("stats").get("verification_passes").asInt() > 0, spec.toString());
    }

    static List<String> fieldNames(JsonNode node) {
        List<String> names = new java.util.ArrayList<>();
        node.fieldNames().forEachRemaining(names::add);
        return names;
    }

    @Test
    void seededSamplingIsReproducible() throws IOException {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString();
        JsonNode a = generate("generate", "-m", main, "-p", "In the beginning", "-n", "16", "--seed", "7", "-t", "1", "--json");
        JsonNode b = generate("generate", "-m", main, "-p", "In the beginning", "-n", "16", "--seed", "7", "-t", "1", "--json");
        assertEquals(a.get("tokens"), b.get("tokens"));
    }

    /** --ctx beyond the model's trained context is capped by it, as the default of 8192 is. */
    @Test
    void aCtxBeyondTheModelsIsCappedByIt() throws IOException {
        JsonNode out = generate("generate", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "-p", "In the beginning", "--ctx", "100000",
                "-n", "2", "--temperature", "0", "-t", "1", "--json");
        assertEquals(2, out.get("tokens").size());
    }

    @Test
    void maxTokensMustBePositive() {
        CliRun run = CliRun.of("generate", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "-p", "x", "--max-tokens", "0");
        assertEquals(2, run.exitCode());
        assertTrue(run.failedWithOneLine() && run.err().contains("--max-tokens must be at least 1"), run.err());
    }

    @Test
    void promptLongerThanTheContextNamesBothNumbers() {
        String prompt = "And the LORD said unto Moses, ".repeat(150); // about 1,200 tokens; the context is 1,024
        CliRun run = CliRun.of("generate", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "--prompt=" + prompt, "-n", "4");
        assertEquals(1, run.exitCode());
        assertTrue(run.failedWithOneLine() && run.err().contains("tokens but the context holds 1024"), run.err());
    }

    @Test
    void anIncompatibleDraftIsRefusedWithTheReason() {
        CliRun run = CliRun.of("generate", "-m", SharedData.kjv("kjv-main-q8_0.gguf").toString(), "-p", "x", "-n", "4",
                "--draft", SharedData.root().resolve("models/tokenizers/llama3/vocab.gguf").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.failedWithOneLine(), run.err());
    }

    @Test
    void badFlagValuesAreUsageErrors() {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString();
        for (String[] bad : new String[][] {{"--temperature", "-1"}, {"--top-p", "0"}, {"--kv-type", "q4"}, {"--draft-max", "0", "--draft", "ngram"}, {"--draft-max", "33", "--draft", "ngram"}, {"--backend", "tpu"}}) {
            String[] args = new String[4 + bad.length];
            args[0] = "generate"; args[1] = "-m"; args[2] = main; args[3] = "-p=x";
            System.arraycopy(bad, 0, args, 4, bad.length);
            CliRun run = CliRun.of(args);
            assertEquals(2, run.exitCode(), String.join(" ", bad) + ": " + run.err());
            assertTrue(run.failedWithOneLine(), run.err());
        }
    }

    /** The CUDA backend on its host emulation, with a draft, gives exactly the CPU backend's tokens. */
    @Test
    void cudaHostBackendWithADraftGivesTheCpuTokens() throws IOException {
        String main = SharedData.kjv("kjv-main-f32.gguf").toString(), draft = SharedData.kjv("kjv-draft-f32.gguf").toString();
        JsonNode cpu = generate("generate", "-m", main, "-p", "And it came to pass", "-n", "12", "--temperature", "0", "-t", "1",
                "--backend", "cpu", "--json");
        JsonNode cuda = generate("generate", "-m", main, "-p", "And it came to pass", "-n", "12", "--temperature", "0", "-t", "1",
                "--backend", "cuda-host", "--draft", draft, "--draft-max", "4", "--draft-p-min", "0", "--json");
        assertEquals(cpu.get("tokens"), cuda.get("tokens"));
        assertTrue(cuda.get("stats").get("total_draft_tokens_count").asInt() > 0);
    }
}
