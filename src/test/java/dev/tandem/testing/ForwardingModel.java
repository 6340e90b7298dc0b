package dev.tandem.testing;

import dev.tandem.model.ModelConfig;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * A model that hands every call to another one, for tests that watch, count or hold passes by overriding what
 * they watch. Closing it leaves the target open (the test owns that).
 */
public class ForwardingModel implements LoadedModel {
    protected final LoadedModel target;

    public ForwardingModel(LoadedModel target) { this.target = target; }

    @Override public ModelConfig config() { return target.config(); }
    @Override public KvCache createKvCache(PagedKvCache tables) { return target.createKvCache(tables); }
    @Override public long kvBytesPerPosition() { return target.kvBytesPerPosition(); }
    @Override public ForwardResult forward(Batch batch, KvCache kv) { return target.forward(batch, kv); }
    @Override public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) { return target.forwardAsync(batch, kv); }
    @Override public Optional<DeviceSampling> deviceSampling() { return target.deviceSampling(); }
    @Override public void close() {}
}
