package dev.tandem.runtime;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The shared bookkeeping of a paged K/V cache: one pool of fixed-size blocks and a block table per sequence.
 * It holds no K/V values itself; each model keeps its own storage with one slot per pool block (see
 * {@link LoadedModel#createKvCache}), so a main model and its draft share tables and one {@link #truncate}
 * rolls both back. Position {@code p} of a sequence lives in block {@code table[p / blockSize]} at offset
 * {@code p % blockSize}.
 *
 * <p>Thread-safe: the scheduler may reserve for one sequence while another is released.
 */
public final class PagedKvCache {
    private final int blockSize;
    private final int totalBlocks;
    /** Free block ids, used as a stack so recently freed (cache-warm) blocks are reused first. */
    private final int[] freeStack;
    private int freeCount;
    private final Map<Integer, Table> tables = new HashMap<>();
    private int nextSequence;
    private final List<TruncationObserver> observers = new CopyOnWriteArrayList<>();

    /**
     * Told of every rollback (a {@link #truncate} that shortens a sequence; {@link #release} is not one):
     * {@code truncating} runs before the tables change, the action it returns after (profilers time the span).
     */
    public interface TruncationObserver {
        Runnable truncating(int seq, int fromLength, int toLength);
    }

    /** A sequence's blocks in position order, and how many positions it has reserved. */
    private static final class Table {
        int[] blocks = new int[8];
        int blockCount;
        int length;
    }

    public PagedKvCache(int blockSize, int totalBlocks) {
        if (blockSize < 1 || totalBlocks < 1) throw new IllegalArgumentException("block size and block count must be positive");
        this.blockSize = blockSize;
        this.totalBlocks = totalBlocks;
        this.freeStack = new int[totalBlocks];
        for (int i = 0; i < totalBlocks; i++) freeStack[i] = totalBlocks - 1 - i;
        this.freeCount = totalBlocks;
    }

    /**
     * A pool sized from a memory budget: {@code bytesPerPosition} is the sum over the models sharing it of
     * {@link LoadedModel#kvBytesPerPosition()}.
     */
    public static PagedKvCache forBudget(long budgetBytes, long bytesPerPosition, int blockSize) {
        long blocks = budgetBytes / (bytesPerPosition * blockSize);
        if (blocks < 1) {
            throw new KvCacheExhaustedException("a K/V budget of " + budgetBytes + " bytes does not hold one block of "
                    + blockSize + " positions (" + bytesPerPosition * blockSize + " bytes)");
        }
        return new PagedKvCache(blockSize, (int) Math.min(blocks, Integer.MAX_VALUE / 2));
    }

    public int blockSize() { return blockSize; }

    public int totalBlocks() { return totalBlocks; }

    public synchronized int freeBlocks() { return freeCount; }

    /** Starts an empty sequence and returns its id. */
    public synchronized int createSequence() {
        int id = nextSequence++;
        tables.put(id, new Table());
        return id;
    }

    private Table table(int seq) {
        Table t = tables.get(seq);
        if (t == null) throw new IllegalArgumentException("unknown sequence " + seq);
        return t;
    }

    /** Positions reserved for {@code seq}. */
    public synchronized int length(int seq) { return table(seq).length; }

    /**
     * Makes positions {@code [0, length)} of {@code seq} writable, taking blocks from the pool as needed. On
     * exhaustion nothing changes and a {@link KvCacheExhaustedException} says how many blocks were missing.
     */
    public synchronized void reserve(int seq, int length) {
        Table t = table(seq);
        if (length <= t.length) return;
        int needed = (length + blockSize - 1) / blockSize - t.blockCount;
        if (needed > freeCount) {
            throw new KvCacheExhaustedException("K/V cache exhausted: sequence " + seq + " needs " + needed + " more blocks of "
                    + blockSize + " positions to reach length " + length + ", but only " + freeCount + " of " + totalBlocks + " are free");
        }
        if (t.blockCount + needed > t.blocks.length) t.blocks = Arrays.copyOf(t.blocks, Math.max(t.blocks.length * 2, t.blockCount + needed));
        for (int i = 0; i < needed; i++) t.blocks[t.blockCount++] = freeStack[--freeCount];
        t.length = length;
    }

    /** Shortens {@code seq} to {@code length} positions and returns blocks no longer needed to the pool. */
    public synchronized void truncate(int seq, int length) {
        Table t = table(seq);
        if (length < 0) throw new IllegalArgumentException("negative length " + length);
        if (length >= t.length) return;
        if (observers.isEmpty()) {
            shorten(t, length);
            return;
        }
        Runnable[] after = new Runnable[observers.size()];
        int n = 0;
        for (TruncationObserver o : observers) after[n++] = o.truncating(seq, t.length, length);
        try {
            shorten(t, length);
        } finally {
            while (n > 0) after[--n].run();  // innermost first: observers may nest ranges
        }
    }

    private void shorten(Table t, int length) {
        int keep = (length + blockSize - 1) / blockSize;
        while (t.blockCount > keep) freeStack[freeCount++] = t.blocks[--t.blockCount];
        t.length = length;
    }

    /** Ends {@code seq}, returning all its blocks. */
    public synchronized void release(int seq) {
        shorten(table(seq), 0);
        tables.remove(seq);
    }

    /** Tells {@code observer} of every rollback from now on, until {@link #stopObserving}. */
    public void observeTruncation(TruncationObserver observer) { observers.add(observer); }

    public void stopObserving(TruncationObserver observer) { observers.remove(observer); }

    /** The pool block holding {@code position} of {@code seq}. */
    public synchronized int block(int seq, int position) {
        Table t = table(seq);
        if (position < 0 || position >= t.length) {
            throw new IllegalStateException("position " + position + " of sequence " + seq + " is not reserved (length " + t.length + ")");
        }
        return t.blocks[position / blockSize];
    }

    /**
     * Copies {@code seq}'s block table into {@code dst} (grown if too small) and returns it: entry {@code i} is
     * the block of positions {@code [i*blockSize, (i+1)*blockSize)}.
     */
    public synchronized int[] blockTable(int seq, int[] dst) {
        Table t = table(seq);
        if (dst == null || dst.length < t.blockCount) dst = new int[Math.max(t.blockCount, 16)];
        System.arraycopy(t.blocks, 0, dst, 0, t.blockCount);
        return dst;
    }
}
