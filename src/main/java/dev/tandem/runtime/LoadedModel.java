package dev.tandem.runtime;

import dev.tandem.model.ModelConfig;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/** A model ready to run on a backend. */
public interface LoadedModel extends AutoCloseable {
    ModelConfig config();

    /** K/V storage for this model over {@code tables}: one block of storage per block of the shared pool. */
    KvCache createKvCache(PagedKvCache tables);

    /** Bytes of K/V storage one position costs this model (for sizing a pool from a memory budget). */
    long kvBytesPerPosition();

    /**
     * Runs the batch's rows in one pass: appends their K/V at their positions (which the tables must already
     * cover, see {@link PagedKvCache#reserve}) and returns logits for {@code batch.logitRows()}. Each weight is
     * read once per pass whatever the number of rows, and a row's logits do not depend on the other rows.
     */
    ForwardResult forward(Batch batch, KvCache kv);

    /** {@link #forward} that may run ahead of the caller (CUDA streams). The CPU runs it at once. */
    default CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
        try {
            return CompletableFuture.completedFuture(forward(batch, kv));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * Sampling and verification where the logits are, when this model's backend can ({@link DeviceSampling}); known
     * at load, the same for every call. Empty: the caller samples on the host from {@link #forwardAsync}'s logits.
     */
    default Optional<DeviceSampling> deviceSampling() { return Optional.empty(); }

    @Override
    void close();
}
