package dev.tandem.engine;

import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A running generation: a {@link Flow.Publisher} of its events (one subscriber), its final
 * {@link #result()}, and {@link #cancel()}. Cancelling the subscription cancels the generation.
 *
 * <p>The scheduler thread only appends events to a queue; delivery to the subscriber runs on the engine's
 * delivery executor, one drain at a time, so a slow subscriber never stalls the batch. Events wait in the
 * queue until requested (at most one per generated token plus two).
 */
public final class Generation implements Flow.Publisher<GenerationEvent> {
    private final CompletableFuture<GenerationOutput> result = new CompletableFuture<>();
    private final AtomicBoolean cancelRequested = new AtomicBoolean();
    private final ConcurrentLinkedQueue<GenerationEvent> events = new ConcurrentLinkedQueue<>();
    private final boolean keepEvents;
    private final Executor delivery;
    private final AtomicInteger drainRequests = new AtomicInteger();
    private final AtomicLong requested = new AtomicLong();
    private final AtomicBoolean subscribed = new AtomicBoolean();
    private volatile Flow.Subscriber<? super GenerationEvent> subscriber;
    private volatile boolean subscriptionCancelled;
    private volatile Throwable failure;
    private volatile boolean terminated;
    private boolean terminalDelivered;

    Generation(Executor delivery, boolean keepEvents) {
        this.delivery = delivery;
        this.keepEvents = keepEvents;
    }

    /** Completes with the output when the generation ends (also when cancelled or past its deadline). */
    public CompletableFuture<GenerationOutput> result() { return result; }

    /** Asks the engine to stop this generation; it finishes with {@link FinishReason#CANCELLED} at the next step. */
    public void cancel() { cancelRequested.set(true); }

    public boolean isCancelRequested() { return cancelRequested.get(); }

    /** Waits for the result, rethrowing the engine's exception (e.g. a model failure) unwrapped. */
    public GenerationOutput await() {
        try {
            return result.get();
        } catch (InterruptedException e) {
            cancel();
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while waiting for the generation");
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) throw r;
            throw new IllegalStateException(e.getCause());
        }
    }

    @Override
    public void subscribe(Flow.Subscriber<? super GenerationEvent> s) {
        if (!keepEvents || !subscribed.compareAndSet(false, true)) {
            s.onSubscribe(new Flow.Subscription() {
                @Override public void request(long n) {}
                @Override public void cancel() {}
            });
            s.onError(new IllegalStateException(keepEvents ? "a generation takes one subscriber" : "this generation is not streamed"));
            return;
        }
        subscriber = s;
        s.onSubscribe(new Flow.Subscription() {
            @Override
            public void request(long n) {
                if (n <= 0) {
                    failure = new IllegalArgumentException("request(" + n + "): demand must be positive (rule 3.9)");
                    subscriptionCancelled = true;
                    Generation.this.cancel();
                    terminated = true;
                } else {
                    requested.accumulateAndGet(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
                }
                drain();
            }

            @Override
            public void cancel() {
                subscriptionCancelled = true;
                Generation.this.cancel();
            }
        });
        drain();
    }

    /** Scheduler side: a new event. */
    void publish(GenerationEvent event) {
        if (!keepEvents) return;
        events.add(event);
        drain();
    }

    /** Scheduler side: the generation ended normally. */
    void complete(GenerationOutput output) {
        terminated = true;
        result.complete(output);
        drain();
    }

    /** Scheduler side: the generation failed. */
    void fail(Throwable e) {
        failure = e;
        terminated = true;
        result.completeExceptionally(e);
        drain();
    }

    private void drain() {
        if (subscriber == null) return;
        if (drainRequests.getAndIncrement() == 0) delivery.execute(this::drainLoop);
    }

    private void drainLoop() {
        int missed = 1;
        Flow.Subscriber<? super GenerationEvent> s = subscriber;
        do {
            while (!terminalDelivered && !subscriptionCancelled && requested.get() > 0) {
                GenerationEvent e = events.poll();
                if (e == null) break;
                requested.decrementAndGet();
                s.onNext(e);
            }
            if (!terminalDelivered && !subscriptionCancelled && terminated && (events.isEmpty() || failure != null)) {
                terminalDelivered = true;
                if (failure != null) s.onError(failure);
                else s.onComplete();
            }
            missed = drainRequests.addAndGet(-missed);
        } while (missed != 0);
    }
}
