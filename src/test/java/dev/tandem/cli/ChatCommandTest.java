package dev.tandem.cli;

import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.*;

class ChatCommandTest {
    static CliRun chat(String input, String... args) {
        return CliRun.withInput(input.getBytes(StandardCharsets.UTF_8), args);
    }

    @Test
    void aTwoTurnConversationWithTheDraftShowsSpeedAndAcceptance() {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString(), draft = SharedData.kjv("kjv-draft-q8_0.gguf").toString();
        CliRun run = chat("Who is the LORD?\nAnd Moses?\n/exit\n", "chat", "-m", main, "--draft", draft, "--draft-p-min", "0",
                "--temperature", "0", "-n", "24", "-t", "1");
        assertEquals(0, run.exitCode(), run.err());
        assertFalse(run.out().isBlank(), "the replies are printed");
        long statsLines = run.err().lines().filter(l -> l.startsWith("[") && l.contains("tok/s") && l.contains("accepted")).count();
        assertEquals(2, statsLines, "one stats line with acceptance per reply:\n" + run.err());
    }

    @Test
    void greedyChatIsTheSameWithAndWithoutADraft() {
        String main = SharedData.kjv("kjv-main-q8_0.gguf").toString(), draft = SharedData.kjv("kjv-draft-q8_0.gguf").toString();
        CliRun plain = chat("Tell me of Egypt\n", "chat", "-m", main, "--temperature", "0", "-n", "32", "-t", "1");
        CliRun spec = chat("Tell me of Egypt\n", "chat", "-m", main, "--draft", draft, "--draft-p-min", "0", "--temperature", "0", "-n", "32", "-t", "1");
        assertEquals(0, plain.exitCode(), plain.err());
        assertEquals(plain.out(), spec.out());
    }
}
