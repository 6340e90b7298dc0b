package dev.tandem.runtime;

/**
 * A model computed NaN or an infinity: its weights or hyperparameters hold such values, or overflow float. The
 * message names the model and where the values first appeared (a layer's output, or the output logits); the
 * sequence cannot go on, since every token chosen from such a row would be arbitrary.
 */
public class NonFiniteOutputException extends RuntimeException {
    public NonFiniteOutputException(String message) {
        super(message);
    }
}
