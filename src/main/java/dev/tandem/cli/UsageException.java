package dev.tandem.cli;

/** A flag value the command cannot use (exit code 2). */
final class UsageException extends RuntimeException {
    UsageException(String message) { super(message); }
}
