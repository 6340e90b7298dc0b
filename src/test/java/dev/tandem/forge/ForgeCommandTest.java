package dev.tandem.forge;

import dev.tandem.cli.ForgeCommand;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.TensorType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import picocli.CommandLine;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

class ForgeCommandTest {
    @TempDir Path tmp;

    record Run(int exitCode, String out, String err) {}

    private Run run(String... args) {
        CommandLine cl = ForgeCommand.commandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out));
        cl.setErr(new PrintWriter(err));
        int code = cl.execute(args);
        return new Run(code, out.toString(), err.toString());
    }

    private String[] args(String... rest) {
        List<String> a = new ArrayList<>(List.of("--out", tmp.resolve("m.gguf").toString()));
        a.addAll(List.of(rest));
        return a.toArray(String[]::new);
    }

    @Test
    void flagsOverrideThePreset() {
        Run r = run(args("--preset", "tiny", "--arch", "qwen2", "--layers", "3", "--hidden", "128", "--heads", "4", "--kv-heads", "1",
                "--head-dim", "32", "--ffn", "384", "--vocab", "700", "--context", "256", "--type", "q8_0", "--tied", "--seed", "9"));
        assertEquals(0, r.exitCode(), r.err());
        assertTrue(r.out().startsWith("wrote "), r.out());
        assertEquals("", r.err(), "quiet when not on a terminal");
        try (ModelFile f = ModelFile.open(tmp.resolve("m.gguf"))) {
            ModelConfig c = f.config();
            assertEquals(3, c.layers());
            assertEquals(128, c.hiddenSize());
            assertEquals(4, c.heads());
            assertEquals(1, c.kvHeads());
            assertEquals(32, c.headDim());
            assertEquals(384, c.ffnSize());
            assertEquals(700, c.vocabularySize());
            assertEquals(256, c.contextLength());
            assertTrue(c.tiedEmbeddings());
            assertTrue(c.qkvBias());
            assertEquals(TensorType.Q8_0, f.tensor("blk.2.ffn_up.weight").type());
        }
    }

    @Test
    void aPairWithAgreementEpsAndADraftOfIt() {
        Path main = tmp.resolve("main.gguf"), draft = tmp.resolve("draft.gguf");
        assertEquals(0, run("--out", main.toString(), "--draft-layers", "2", "--agreement-eps", "0.25").exitCode());
        Run r = run("--out", draft.toString(), "--draft-of", main.toString());
        assertEquals(0, r.exitCode(), r.err());
        try (ModelFile d = ModelFile.open(draft)) {
            assertEquals(2, d.config().layers(), "--layers defaults to the main model's --draft-layers");
        }
        Run mismatch = run("--out", draft.toString(), "--draft-of", main.toString(), "--layers", "1");
        assertEquals(0, mismatch.exitCode());
        assertTrue(mismatch.err().contains("warning"), mismatch.err());
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', value = {
            "--hidden -3                         | --hidden",
            "--layers 0                          | --layers",
            "--heads 6 --kv-heads 4              | --kv-heads",
            "--type q3_k                         | --type",
            "--type q4_k --hidden 384            | --hidden",
            "--type q8_0 --ffn 100               | --ffn",
            "--preset llama-2                    | --preset",
            "--arch gpt2                         | --arch",
            "--vocab 100                         | --vocab",
            "--agreement-eps 0.5                 | --draft-layers",
            "--agreement-eps -1 --draft-layers 1 | --agreement-eps",
            "--draft-layers 9                    | --draft-layers",
            "--tied --untied                     | --untied",
            "--hidden abc                        | --hidden",
            "--draft-of missing.gguf --hidden 64 | --hidden",
            "--from x.gguf                       | --type",
    })
    void badInputIsOneLineNamingTheFlagWithExitCode2(String flags, String named) {
        Run r = run(args(flags.trim().split("\\s+")));
        assertEquals(2, r.exitCode(), r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        assertTrue(r.err().contains(named), "names " + named + ": " + r.err());
        assertFalse(r.err().contains("Exception"), r.err());
        assertFalse(Files.exists(tmp.resolve("m.gguf")));
    }

    @Test
    void anOutFileInAMissingFolderIsRefused() {
        Run r = run("--out", tmp.resolve("no/such/folder/m.gguf").toString());
        assertEquals(2, r.exitCode());
        assertTrue(r.err().contains("--out") && r.err().contains("does not exist"), r.err());
    }

    @Test
    void aDraftOfAFileThatIsNotGgufFailsNamingTheFile() throws Exception {
        Path bogus = tmp.resolve("bogus.gguf");
        Files.writeString(bogus, "not a model at all, just some text");
        Run r = run(args("--draft-of", bogus.toString(), "--layers", "1"));
        assertEquals(1, r.exitCode());
        assertTrue(r.err().contains("bogus.gguf"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    @Test
    void helpExplainsHowToMakeAPair() {
        Run r = run("--help");
        assertEquals(0, r.exitCode());
        assertTrue(r.out().contains("--draft-of main.gguf --layers 2"), r.out());
        assertTrue(r.out().contains("--agreement-eps"), r.out());
    }
}
