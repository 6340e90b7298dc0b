package dev.tandem.engine;

/** Every batch slot is busy and the waiting queue is full; the request was not started. Try again later. */
public class EngineOverloadedException extends RuntimeException {
    public EngineOverloadedException(int running, int queued) {
        super("the engine is busy: " + running + " sequences running and " + queued + " waiting (the queue is full); try again later");
    }
}
