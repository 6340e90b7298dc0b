package dev.tandem.runtime.cuda;

import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.PagedKvCache;

/**
 * One model's K/V values in device memory, indexed by the shared {@link PagedKvCache}'s block tables. Per layer,
 * K and V each: {@code [totalBlocks][blockSize][kvHeads][headDim]} elements of {@link #type} (F32, or F16/BF16
 * rounded to nearest even on append; the layout of {@code attention.cu}).
 * Rollback is {@link PagedKvCache#truncate} on the host: nothing here moves. With NVTX ranges on, each rollback
 * shows as a "rollback MODEL" range around that truncate.
 */
final class CudaKvCache implements KvCache, PagedKvCache.BlockStorage {
    final CudaModel owner;
    final PagedKvCache tables;
    final KvType type;
    final DeviceBuffer[] keys, values;
    private final GpuDriver driver;
    private final long bytesPerPosition;
    private final long bytes;
    private final PagedKvCache.TruncationObserver rollbackRanges;

    CudaKvCache(CudaModel owner, GpuDriver driver, PagedKvCache tables, KvType type, int layers, int kvDim) {
        this.owner = owner;
        this.tables = tables;
        this.type = type;
        this.driver = driver;
        this.bytesPerPosition = (long) kvDim * type.bytes();
        long perLayer = (long) tables.totalBlocks() * tables.blockSize() * kvDim * type.bytes();
        // Before allocating: too little memory is named with both numbers, not a CUDA_ERROR_OUT_OF_MEMORY halfway.
        long positions = (long) tables.totalBlocks() * tables.blockSize();
        new DeviceMemoryPlan(0, 2 * layers * perLayer, positions, 0).requireFree(driver.facts(), "the K/V cache of model '" + owner.nvtxRanges().model() + "'");
        keys = new DeviceBuffer[layers];
        values = new DeviceBuffer[layers];
        try {
            for (int l = 0; l < layers; l++) {
                keys[l] = driver.allocate(perLayer);
                values[l] = driver.allocate(perLayer);
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        bytes = 2 * layers * perLayer;
        Nvtx.Ranges ranges = owner.nvtxRanges();
        rollbackRanges = ranges.isBound() ? (seq, from, to) -> ranges.open(Nvtx.Phase.ROLLBACK)::close : null;
        if (rollbackRanges != null) tables.observeTruncation(rollbackRanges);
        tables.attachStorage(this);
    }

    /**
     * Copy-on-write of a shared block, on the owner's stream so that it lands before the next pass: a block's
     * positions are contiguous in each layer's K and V.
     */
    @Override
    public void copyPositions(int from, int to, int positions) {
        long blockBytes = tables.blockSize() * bytesPerPosition, n = positions * bytesPerPosition;
        for (int l = 0; l < keys.length; l++) {
            driver.copyOnDevice(keys[l].slice(to * blockBytes, n), keys[l].slice(from * blockBytes, n), owner.stream());
            driver.copyOnDevice(values[l].slice(to * blockBytes, n), values[l].slice(from * blockBytes, n), owner.stream());
        }
    }

    @Override public PagedKvCache tables() { return tables; }

    @Override public long bytes() { return bytes; }

    @Override
    public void close() {
        if (rollbackRanges != null) tables.stopObserving(rollbackRanges);
        tables.detachStorage(this);
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) keys[l].close();
            if (values[l] != null) values[l].close();
            keys[l] = values[l] = null;
        }
    }
}
