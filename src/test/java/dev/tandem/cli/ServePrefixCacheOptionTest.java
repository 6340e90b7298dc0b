package dev.tandem.cli;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

import static org.junit.jupiter.api.Assertions.*;

/** {@code serve} caches prompt prefixes unless {@code --no-prefix-cache} says otherwise, and its help says so. */
class ServePrefixCacheOptionTest {
    @Test
    void prefixCachingIsOnUnlessTurnedOff() {
        ServeCommand on = new ServeCommand();
        new CommandLine(on).parseArgs("--model", "m.gguf");
        assertFalse(on.noPrefixCache);
        ServeCommand off = new ServeCommand();
        new CommandLine(off).parseArgs("--model", "m.gguf", "--no-prefix-cache");
        assertTrue(off.noPrefixCache);
        assertTrue(new CommandLine(new ServeCommand()).getUsageMessage().contains("--no-prefix-cache"));
    }
}
