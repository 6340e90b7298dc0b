package dev.tandem.decode;

/** A draft model cannot serve a main model: their vocabularies differ. The message names the first difference. */
public class IncompatibleDraftException extends RuntimeException {
    public IncompatibleDraftException(String message) {
        super(message);
    }
}
