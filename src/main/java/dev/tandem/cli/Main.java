package dev.tandem.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code tandem} command: one subcommand per job. */
@Command(name = "tandem",
        mixinStandardHelpOptions = true,
        versionProvider = Main.Version.class,
        description = "Speculative decoding for large language models, in Java.",
        subcommands = {InfoCommand.class, TokenizeCommand.class, GenerateCommand.class, ChatCommand.class, BenchCommand.class, DraftsCommand.class, ForgeCommand.class, ServeCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    @CommandLine.Spec CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a subcommand is required");
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit code (0 success, 1 failure, 2 bad usage). */
    public static int run(String... args) {
        return execute(commandLine(), args);
    }

    /**
     * Executes {@code cl} (made by {@link #commandLine()}). picocli hands only {@code Exception}s to the
     * execution handler; an input that exhausts the stack or the heap ends in an {@code Error}, which gets the
     * same one line and exit code here instead of a JVM stack trace.
     */
    static int execute(CommandLine cl, String... args) {
        try {
            return cl.execute(args);
        } catch (StackOverflowError | OutOfMemoryError e) {
            return UserErrors.onExhausted(e, cl, args);
        }
    }

    static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler(new UserErrors());
        cl.setParameterExceptionHandler(UserErrors::onBadUsage);
        return cl;
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"tandem " + (v == null ? "dev" : v) + " (Java " + Runtime.version() + ")"};
        }
    }
}
