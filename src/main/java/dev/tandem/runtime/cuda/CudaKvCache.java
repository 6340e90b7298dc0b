package dev.tandem.runtime.cuda;

import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.PagedKvCache;

/**
 * One model's K/V values in device memory, indexed by the shared {@link PagedKvCache}'s block tables. Per layer,
 * K and V each: {@code [totalBlocks][blockSize][kvHeads][headDim]} elements of {@link #type} (F32, or F16/BF16
 * rounded to nearest even on append; the layout of {@code attention.cu}).
 * Rollback is {@link PagedKvCache#truncate} on the host: nothing here moves.
 */
final class CudaKvCache implements KvCache {
    final CudaModel owner;
    final PagedKvCache tables;
    final KvType type;
    final DeviceBuffer[] keys, values;
    private final long bytes;

    CudaKvCache(CudaModel owner, GpuDriver driver, PagedKvCache tables, KvType type, int layers, int kvDim) {
        this.owner = owner;
        this.tables = tables;
        this.type = type;
        long perLayer = (long) tables.totalBlocks() * tables.blockSize() * kvDim * type.bytes();
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
    }

    @Override public PagedKvCache tables() { return tables; }

    @Override public long bytes() { return bytes; }

    @Override
    public void close() {
        for (int l = 0; l < keys.length; l++) {
            if (keys[l] != null) keys[l].close();
            if (values[l] != null) values[l].close();
            keys[l] = values[l] = null;
        }
    }
}
