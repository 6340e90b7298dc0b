package dev.tandem.runtime.cpu;

import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.PagedKvCache;

/**
 * One model's K/V values on the heap. Layout, per layer, for K and for V: slot-major rows of {@code kvDim}
 * values, where the slot of position {@code p} is {@code block * blockSize + p % blockSize} and {@code block}
 * comes from the sequence's block table. F32 values are stored as floats; F16/BF16 as their 16-bit patterns.
 */
final class CpuKvCache implements KvCache, PagedKvCache.BlockStorage {
    final PagedKvCache tables;
    final KvType type;
    final int kvDim;
    final float[][] keys, values;          // F32 storage, per layer
    final short[][] keys16, values16;      // F16/BF16 storage, per layer

    CpuKvCache(PagedKvCache tables, KvType type, int layers, int kvDim) {
        this.tables = tables;
        this.type = type;
        this.kvDim = kvDim;
        long perLayer = (long) tables.totalBlocks() * tables.blockSize() * kvDim;
        if (perLayer > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException("K/V pool of " + tables.totalBlocks() + " blocks is too large for one CPU layer array");
        }
        if (type == KvType.F32) {
            keys = new float[layers][(int) perLayer];
            values = new float[layers][(int) perLayer];
            keys16 = values16 = null;
        } else {
            keys16 = new short[layers][(int) perLayer];
            values16 = new short[layers][(int) perLayer];
            keys = values = null;
        }
        tables.attachStorage(this);
    }

    /** Copy-on-write of a shared block: slots are block-major, so a block's first positions are one run per layer. */
    @Override
    public void copyPositions(int from, int to, int positions) {
        int src = from * tables.blockSize() * kvDim, dst = to * tables.blockSize() * kvDim, n = positions * kvDim;
        for (int l = 0; l < (keys != null ? keys.length : keys16.length); l++) {
            if (keys != null) {
                System.arraycopy(keys[l], src, keys[l], dst, n);
                System.arraycopy(values[l], src, values[l], dst, n);
            } else {
                System.arraycopy(keys16[l], src, keys16[l], dst, n);
                System.arraycopy(values16[l], src, values16[l], dst, n);
            }
        }
    }

    @Override public PagedKvCache tables() { return tables; }

    @Override public long bytes() {
        int layers = keys != null ? keys.length : keys16.length;
        return 2L * layers * tables.totalBlocks() * tables.blockSize() * kvDim * type.bytes();
    }

    /** Stores {@code kvDim} values from {@code src[srcOff..]} at {@code slot} of layer {@code layer}. */
    void store(int layer, int slot, float[] k, float[] v, int srcOff) {
        int dst = slot * kvDim;
        if (type == KvType.F32) {
            System.arraycopy(k, srcOff, keys[layer], dst, kvDim);
            System.arraycopy(v, srcOff, values[layer], dst, kvDim);
        } else {
            for (int i = 0; i < kvDim; i++) {
                keys16[layer][dst + i] = encode(k[srcOff + i]);
                values16[layer][dst + i] = encode(v[srcOff + i]);
            }
        }
    }

    short encode(float f) {
        if (type == KvType.F16) return Float.floatToFloat16(f);
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
        return (short) ((bits + 0x7FFF + ((bits >>> 16) & 1)) >>> 16); // round to nearest even
    }

    float decode(short s) {
        return type == KvType.F16 ? Float.float16ToFloat(s) : Float.intBitsToFloat(s << 16);
    }

    @Override public void close() { tables.detachStorage(this); }
}
