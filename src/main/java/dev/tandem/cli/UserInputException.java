package dev.tandem.cli;

/** Input that is well-formed but cannot be run, e.g. a prompt longer than the context (exit code 1). */
final class UserInputException extends RuntimeException {
    UserInputException(String message) { super(message); }
}
