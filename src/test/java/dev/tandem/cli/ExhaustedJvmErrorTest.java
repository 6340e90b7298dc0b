package dev.tandem.cli;

import dev.tandem.model.gguf.GgufValueType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defect 5: whatever input makes a command run out of stack or heap, the user gets one line and exit
 * code 1, as for every other failure, not a JVM stack trace of a thousand lines (picocli hands only
 * {@code Exception}s to the execution handler).
 */
class ExhaustedJvmErrorTest {
    @TempDir Path tmp;

    @CommandLine.Command(name = "explode")
    static final class Explode implements Runnable {
        @CommandLine.Option(names = "--heap") boolean heap;
        @CommandLine.Option(names = "--verbose") boolean verbose;

        @Override
        public void run() {
            if (heap) throw new OutOfMemoryError("Java heap space");
            throw new StackOverflowError();
        }
    }

    private static CliRun explode(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        CommandLine cl = Main.commandLine().addSubcommand(new Explode());
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        String[] all = new String[args.length + 1];
        all[0] = "explode";
        System.arraycopy(args, 0, all, 1, args.length);
        return new CliRun(Main.execute(cl, all), out.toString(), err.toString());
    }

    @Test
    void aStackOverflowIsOneLineAndExitCode1() {
        CliRun run = explode();
        assertEquals(1, run.exitCode());
        assertTrue(run.failedWithOneLine(), run.err());
        assertEquals(1, run.err().strip().lines().count(), run.err());
        assertTrue(run.err().contains("tandem explode: ") && run.err().contains("stack overflow"), run.err());
    }

    @Test
    void runningOutOfHeapIsOneLineAndExitCode1() {
        CliRun run = explode("--heap");
        assertEquals(1, run.exitCode());
        assertEquals(1, run.err().strip().lines().count(), run.err());
        assertTrue(run.err().contains("out of memory (Java heap space)") && run.err().contains("-Xmx"), run.err());
    }

    @Test
    void verboseAddsTheStackTrace() {
        assertTrue(explode("--verbose").err().contains("\tat "));
    }

    @Test
    void aModelFileOfArraysNested100000DeepIsOneLineNamingTheKey() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        ByteBuffer head = ByteBuffer.allocate(24 + 8 + 4 + 4).order(ByteOrder.LITTLE_ENDIAN);
        head.putInt(0x46554747).putInt(3).putLong(0).putLong(1).putLong(4).put("deep".getBytes()).putInt(GgufValueType.ARRAY.id());
        b.writeBytes(head.array());
        ByteBuffer level = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putInt(GgufValueType.ARRAY.id()).putLong(1);
        for (int i = 0; i < 100_000; i++) b.writeBytes(level.array());
        Path model = tmp.resolve("deep.gguf");
        Files.write(model, b.toByteArray());
        CliRun run = CliRun.of("info", "-m", model.toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.failedWithOneLine(), run.err());
        assertTrue(run.err().contains("'deep") && run.err().contains("nests arrays"), run.err());
    }
}
