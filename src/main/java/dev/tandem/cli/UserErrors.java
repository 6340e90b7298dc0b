package dev.tandem.cli;

import dev.tandem.bench.SpeculativeMismatchException;
import dev.tandem.decode.IncompatibleDraftException;
import dev.tandem.engine.InvalidRequestException;
import dev.tandem.model.ModelFormatException;
import dev.tandem.runtime.BackendUnavailableException;
import dev.tandem.runtime.KvCacheExhaustedException;
import dev.tandem.runtime.NonFiniteOutputException;
import dev.tandem.runtime.cuda.DeviceFaultException;
import dev.tandem.runtime.cuda.UnsupportedWeightException;
import dev.tandem.tokenizer.ChatTemplateException;
import dev.tandem.tokenizer.TokenizerException;
import picocli.CommandLine;

import java.io.PrintWriter;

/**
 * Turns failures into one line on stderr and an exit code: 2 for bad usage (flags, values), 1 for everything
 * else. A stack trace only with {@code --verbose}.
 */
final class UserErrors implements CommandLine.IExecutionExceptionHandler {
    static final int FAILURE = 1;
    static final int USAGE = 2;

    @Override
    public int handleExecutionException(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
        PrintWriter err = cl.getErr();
        boolean verbose = parsed.expandedArgs().contains("--verbose");
        if (e instanceof UsageException) {
            err.println("tandem " + cl.getCommandName() + ": " + e.getMessage());
            err.println("Try 'tandem " + cl.getCommandName() + " --help' for more information.");
            err.flush();
            return USAGE;
        }
        String message = userMessage(e) != null ? userMessage(e) : internalError(e, verbose);
        err.println("tandem " + cl.getCommandName() + ": " + message);
        if (verbose) e.printStackTrace(err);
        err.flush();
        return FAILURE;
    }

    /**
     * The one line a user gets for a failure they can act on (bad input, a backend that cannot run here, a weight
     * type the GPU has no kernel for, a CUDA error, a bench's speculative output that differs from plain decoding, whose
     * message names the request and token), or null for an internal error. JCuda's
     * {@code jcuda.CudaException} is matched by class name, also as a cause: its classes need libcuda.so.1 to load.
     */
    static String userMessage(Throwable e) {
        if (e instanceof ModelFormatException || e instanceof TokenizerException || e instanceof KvCacheExhaustedException
                || e instanceof UserInputException || e instanceof IllegalArgumentException
                || e instanceof BackendUnavailableException || e instanceof UnsupportedWeightException
                || e instanceof NonFiniteOutputException || e instanceof InvalidRequestException
                || e instanceof IncompatibleDraftException || e instanceof DeviceFaultException
                || e instanceof SpeculativeMismatchException || e instanceof ChatTemplateException) {
            return e.getMessage();
        }
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t.getClass().getName().equals("jcuda.CudaException")) return "CUDA error: " + t.getMessage();
        }
        return null;
    }

    /**
     * A failure that is Tandem's bug, not the user's: its type, its message and the line that threw it, so that a
     * report names the place even without {@code --verbose} (a bare "internal error: ArithmeticException" does not).
     */
    static String internalError(Throwable e, boolean verbose) {
        StackTraceElement[] trace = e.getStackTrace();
        String where = trace.length == 0 ? "" : " at " + trace[0].getClassName().replaceFirst("^.*\\.", "") + "."
                + trace[0].getMethodName() + "(" + trace[0].getFileName() + ":" + trace[0].getLineNumber() + ")";
        return "internal error: " + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()) + where
                + (verbose ? "" : " (run with --verbose for details)");
    }

    /** A command that ran out of stack or heap: one line naming which, a stack trace only with --verbose. */
    static int onExhausted(VirtualMachineError e, CommandLine cl, String[] args) {
        CommandLine.ParseResult parsed = cl.getParseResult();
        String command = parsed != null && parsed.hasSubcommand() ? parsed.subcommand().commandSpec().name() : cl.getCommandName();
        String what = e instanceof StackOverflowError
                ? "the input is nested too deeply to process (stack overflow)"
                : "out of memory (" + e.getMessage() + "): the model or input needs more than this JVM's heap (-Xmx)";
        PrintWriter err = cl.getErr();
        err.println("tandem " + command + ": " + what);
        if (java.util.Arrays.asList(args).contains("--verbose")) e.printStackTrace(err);
        err.flush();
        return FAILURE;
    }

    static int onBadUsage(CommandLine.ParameterException e, String[] args) {
        CommandLine cl = e.getCommandLine();
        cl.getErr().println("tandem " + cl.getCommandName() + ": " + e.getMessage());
        cl.getErr().println("Try 'tandem " + (cl.getCommandName().equals("tandem") ? "" : cl.getCommandName() + " ") + "--help' for more information.");
        cl.getErr().flush();
        return USAGE;
    }
}
