package dev.tandem.cli;

import dev.tandem.decode.IncompatibleDraftException;
import dev.tandem.engine.PromptTooLongException;
import dev.tandem.runtime.NonFiniteOutputException;
import dev.tandem.tokenizer.ChatTemplateException;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defect 5: failures a user causes are their own one-line message, and the few that are Tandem's bugs
 * ("internal error") name the line that threw, not only an exception type.
 */
class UserErrorsTest {
    @Test
    void userCausedFailuresOfTheEngineAndTheModelAreTheirOwnMessage() {
        assertEquals("draft 'd' cannot serve 'm': vocabularies differ",
                UserErrors.userMessage(new IncompatibleDraftException("draft 'd' cannot serve 'm': vocabularies differ")));
        assertNotNull(UserErrors.userMessage(new PromptTooLongException(5000, 4096, "prompt")));
        assertEquals("model 'x' computed NaN", UserErrors.userMessage(new NonFiniteOutputException("model 'x' computed NaN")));
        assertEquals("the chat template rejected the messages: roles must alternate",
                UserErrors.userMessage(new ChatTemplateException("the chat template rejected the messages: roles must alternate")));
    }

    @Test
    void anInternalErrorNamesTheLineThatThrew() {
        ArithmeticException bug = new ArithmeticException("/ by zero");
        bug.setStackTrace(new StackTraceElement[] {new StackTraceElement("dev.tandem.model.gguf.GgufFile", "alignUp", "GgufFile.java", 160)});
        assertNull(UserErrors.userMessage(bug));
        assertEquals("internal error: ArithmeticException: / by zero at GgufFile.alignUp(GgufFile.java:160) (run with --verbose for details)",
                UserErrors.internalError(bug, false));
    }
}
