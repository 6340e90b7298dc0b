package dev.tandem.cli;

import dev.tandem.engine.Generation;
import dev.tandem.engine.GenerationEvent;
import dev.tandem.engine.GenerationOutput;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Flow;
import java.util.function.Consumer;

/**
 * Hands a generation's text chunks to a consumer as the engine publishes them (on its delivery thread, one at a
 * time, in order), and waits until the last one has been handled: a command prints its stats line after the text.
 */
final class StreamedGeneration implements Flow.Subscriber<GenerationEvent> {
    private final Generation generation;
    private final Consumer<GenerationEvent.Chunk> onChunk;
    private final CountDownLatch ended = new CountDownLatch(1);
    /** What the consumer threw; the generation is cancelled and this is rethrown to the waiting command. */
    private volatile RuntimeException consumerFailure;

    private StreamedGeneration(Generation generation, Consumer<GenerationEvent.Chunk> onChunk) {
        this.generation = generation;
        this.onChunk = onChunk;
    }

    /** Streams {@code generation}'s chunks to {@code onChunk}; returns its output, or throws what ended it. */
    static GenerationOutput consume(Generation generation, Consumer<GenerationEvent.Chunk> onChunk) {
        StreamedGeneration stream = new StreamedGeneration(generation, onChunk);
        generation.subscribe(stream);
        try {
            stream.ended.await();
        } catch (InterruptedException e) {
            generation.cancel();
            Thread.currentThread().interrupt();
        }
        if (stream.consumerFailure != null) throw stream.consumerFailure;
        return generation.await();      // rethrows the engine's failure (a bad weight, a device fault) as it was
    }

    @Override
    public void onSubscribe(Flow.Subscription s) { s.request(Long.MAX_VALUE); }

    @Override
    public void onNext(GenerationEvent event) {
        if (!(event instanceof GenerationEvent.Chunk chunk) || consumerFailure != null) return;
        try {
            onChunk.accept(chunk);
        } catch (RuntimeException e) {
            // Thrown out of onNext it would stop the delivery, and the end this command waits for would never come.
            consumerFailure = e;
            generation.cancel();
        }
    }

    @Override
    public void onError(Throwable failure) { ended.countDown(); }

    @Override
    public void onComplete() { ended.countDown(); }
}
