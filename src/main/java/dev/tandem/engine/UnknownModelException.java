package dev.tandem.engine;

import java.util.List;

/** A request names a model the engine does not hold. */
public class UnknownModelException extends InvalidRequestException {
    public UnknownModelException(String kind, String name, String param, List<String> known) {
        super("unknown " + kind + " '" + name + "'; loaded: " + String.join(", ", known), param, "model_not_found");
    }
}
