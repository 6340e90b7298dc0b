package dev.tandem.engine;

/** A chat template could not be rendered (no template, a template error, or the template's raise_exception). */
public class ChatTemplateException extends InvalidRequestException {
    public ChatTemplateException(String message) {
        super(message, "messages", "chat_template_error");
    }
}
