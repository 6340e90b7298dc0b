package dev.tandem.runtime.cuda;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The host emulation posing as a GPU with the {@link DeviceFacts} a test gives (a small or old device), counting
 * device allocations, so that tests see what a real device would decide and that a refused load allocated nothing.
 */
final class FactsDriver extends ForwardingGpuDriver {
    private volatile DeviceFacts facts;
    private final AtomicLong allocations = new AtomicLong();

    FactsDriver(GpuDriver target, DeviceFacts facts) {
        super(target);
        this.facts = facts;
    }

    void facts(DeviceFacts f) { this.facts = f; }

    /** Allocations so far, freed or not. */
    long allocations() { return allocations.get(); }

    @Override public DeviceFacts facts() { return facts; }

    @Override
    public DeviceBuffer allocate(long bytes) {
        allocations.incrementAndGet();
        return target.allocate(bytes);  // not wrapped: the target's own calls take its own buffer type
    }
}
