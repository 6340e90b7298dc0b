package dev.tandem.runtime.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** JCuda's multi-line loading failures become one line for a status or an error message. */
class JCudaNativesTest {
    @Test
    void aLoadingDumpBecomesItsFirstLineAndTheInnermostCause() {
        Throwable dump = new UnsatisfiedLinkError("Error while loading native library \"JCublas2-12.6.0-linux-x86_64\"\n"
                + "Operating system name: Linux\nArchitecture         : amd64\n---(start of nested stack traces)---\n\tat x.y(z)");
        dump.initCause(new UnsatisfiedLinkError("libcublas.so.12: cannot open shared object file: No such file or directory\n\tat a.b(c)"));
        assertEquals("Error while loading native library \"JCublas2-12.6.0-linux-x86_64\" "
                + "(libcublas.so.12: cannot open shared object file: No such file or directory)", JCudaNatives.firstLine(dump));
    }

    @Test
    void aMessagelessThrowableIsNamedByItsClass() {
        assertEquals("IllegalStateException", JCudaNatives.firstLine(new IllegalStateException()));
    }
}
