package dev.tandem.tokenizer;

/**
 * A chat template could not be rendered (a template error, or the template's raise_exception). The message is
 * meant for users as it is. The engine reports it as an invalid request on "messages".
 */
public class ChatTemplateException extends RuntimeException {
    public ChatTemplateException(String message) {
        super(message);
    }
}
