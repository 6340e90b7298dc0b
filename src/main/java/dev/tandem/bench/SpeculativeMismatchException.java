package dev.tandem.bench;

/**
 * A greedy speculative output that differs from plain decoding of the same prompt. Greedy speculative decoding is
 * exact by design (the bitwise contract), so this is a bug in the engine, and a bench that saw it has measured
 * something other than what it claims: it stops rather than print speeds.
 */
public final class SpeculativeMismatchException extends RuntimeException {
    public SpeculativeMismatchException(String message) { super(message); }
}
