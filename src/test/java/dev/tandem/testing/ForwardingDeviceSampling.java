package dev.tandem.testing;

import dev.tandem.runtime.Batch;
import dev.tandem.runtime.DeviceSampling;
import dev.tandem.runtime.KvCache;

import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * Device sampling that hands every call to another model's, for tests that watch or hold verifications by overriding
 * {@link #verifySampledAsync(Batch, KvCache, List)} (the lone verification is a batch of one and comes through it).
 */
public class ForwardingDeviceSampling implements DeviceSampling {
    protected final DeviceSampling target;

    public ForwardingDeviceSampling(DeviceSampling target) { this.target = target; }

    @Override public void keepDraftRows(int rows) { target.keepDraftRows(rows); }

    @Override
    public CompletionStage<SampledVerdicts> verifySampledAsync(Batch batch, KvCache kv, List<Verification> verifications) {
        return target.verifySampledAsync(batch, kv, verifications);
    }

    @Override
    public CompletionStage<DrawnToken> sampleDraftAsync(Batch batch, KvCache kv, DraftDraw draw) { return target.sampleDraftAsync(batch, kv, draw); }
}
