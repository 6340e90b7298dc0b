package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelConfig;
import dev.tandem.runtime.Batch;

import java.util.ArrayList;
import java.util.List;

/**
 * The memory a model's passes work in: activations for {@code maxBatchRows} rows, allocated with the model, and
 * the buffers whose size depends on the batch, grown when a pass needs more (which drops the model's graphs).
 */
final class PassBuffers implements AutoCloseable {
    /** {@link PassLayout}'s staged ints: written on the host, copied to the device in one go. */
    record StagedInts(PinnedBuffer host, DeviceBuffer device) implements AutoCloseable {
        @Override
        public void close() {
            host.close();
            device.close();
        }
    }

    /**
     * A pass's result rows. {@code ids}: one int ahead of the argmax ids, a greedy verification's accepted length,
     * so that one copy brings back both; {@code tops}: each row's top-token probability; {@code logits}: stay on
     * the device until read.
     */
    record Results(DeviceBuffer ids, PinnedBuffer hostIds, DeviceBuffer tops, PinnedBuffer hostTops, DeviceBuffer logits) implements AutoCloseable {
        @Override
        public void close() {
            ids.close();
            hostIds.close();
            tops.close();
            hostTops.close();
            logits.close();
        }
    }

    /** attention_partial's per-chunk outputs, maxima and sums, combined by the last block of each KV head. */
    record AttentionPartials(DeviceBuffer out, DeviceBuffer max, DeviceBuffer sum) implements AutoCloseable {
        @Override
        public void close() {
            out.close();
            max.close();
            sum.close();
        }
    }

    // Per-chunk activations, row-major: row r of a w-wide buffer is floats [r*w, (r+1)*w).
    final DeviceBuffer x, xb, q, k, v, att, proj, gate, up, hidden, gathered;
    /** The matvec residual epilogue's count of finished blocks: one device word, 0 between launches. */
    final DeviceBuffer blocksDone;
    /** attention_partial's counts of finished blocks, one word per KV head, 0 between launches. */
    final DeviceBuffer attentionDone;

    private final GpuDriver driver;
    private final ModelConfig c;
    private final int maxRows;
    private final List<DeviceBuffer> fixed = new ArrayList<>();
    private final GrowableBuffers<StagedInts> ints;
    private final GrowableBuffers<Results> results;
    private final GrowableBuffers<AttentionPartials> partials;
    /** Logits read on the host: not captured by any graph, so replacing it drops none. */
    private final GrowableBuffers<PinnedBuffer> hostLogits;

    /** {@code dropGraphs}: forgets the graphs that captured these buffers' addresses, before one is replaced. */
    PassBuffers(GpuDriver driver, DeviceUpload upload, ModelConfig c, int maxRows, Runnable dropGraphs) {
        this.driver = driver;
        this.c = c;
        this.maxRows = maxRows;
        try {
            blocksDone = keep(upload.copy(new float[1]));  // the bits of 0.0f: the unsigned count 0
            attentionDone = keep(upload.copy(new float[c.kvHeads()]));
            int h = c.hiddenSize();
            x = floats(maxRows * h);
            xb = floats(maxRows * h);
            q = floats(maxRows * c.qDim());
            k = floats(maxRows * c.kvDim());
            v = floats(maxRows * c.kvDim());
            att = floats(maxRows * c.qDim());
            proj = floats(maxRows * h);
            gate = floats(maxRows * c.ffnSize());
            up = floats(maxRows * c.ffnSize());
            hidden = floats(maxRows * c.ffnSize());
            gathered = floats(maxRows * h);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        int vocab = c.vocabularySize();
        ints = new GrowableBuffers<>(1024, dropGraphs, n -> new StagedInts(driver.allocatePinned(n * Integer.BYTES), driver.allocate(n * Integer.BYTES)));
        results = new GrowableBuffers<>(LaunchGeometry.MAX_ROWS, dropGraphs, rows -> new Results(
                driver.allocate((rows + 1) * Integer.BYTES), driver.allocatePinned((rows + 1) * Integer.BYTES),
                driver.allocate(rows * Float.BYTES), driver.allocatePinned(rows * Float.BYTES),
                driver.allocate(rows * vocab * Float.BYTES)));
        partials = new GrowableBuffers<>(0, dropGraphs, n -> new AttentionPartials(
                driver.allocate(n * c.headDim() * Float.BYTES), driver.allocate(n * Float.BYTES), driver.allocate(n * Float.BYTES)));
        hostLogits = new GrowableBuffers<>(0, () -> { }, driver::allocatePinned);
    }

    /** Grows what {@code layout} needs and writes its staged ints. Only while the stream is idle. */
    void stage(Batch batch, PassLayout layout) {
        layout.write(batch, ints.atLeast(layout.stagedInts()).host().segment());
        results.atLeast(Math.max(1, batch.logitRows().length));
        partials.atLeast((long) maxRows * c.heads() * layout.maxChunks());
    }

    StagedInts ints() { return ints.current(); }

    Results results() { return results.current(); }

    AttentionPartials partials() { return partials.current(); }

    /** Pinned memory for reading {@code bytes} of logits back. */
    PinnedBuffer hostLogits(long bytes) { return hostLogits.atLeast(bytes); }

    private DeviceBuffer keep(DeviceBuffer b) {
        fixed.add(b);
        return b;
    }

    private DeviceBuffer floats(long count) { return keep(driver.allocate(count * Float.BYTES)); }

    @Override
    public void close() {
        for (AutoCloseable group : new AutoCloseable[] {ints, results, partials, hostLogits}) {
            if (group != null) CudaModel.closeQuietly(group);
        }
        for (DeviceBuffer b : fixed.reversed()) CudaModel.closeQuietly(b);
        fixed.clear();
    }
}
