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
 * <p>Prefix caching (when built with an identity): full blocks a caller {@link #publish publishes} are
 * content-addressed by the token ids of the whole prefix up to their end (see {@link PrefixIndex}), and a new
 * sequence whose tokens start with published blocks {@link #shareCachedPrefix shares} them instead of computing
 * them again. Blocks are reference-counted, one reference per table entry. Shared and published blocks are
 * immutable: a {@link #truncate} into the middle of one gives the sequence a private copy (copy-on-write, through
 * each attached {@link BlockStorage}) or, when nobody else holds it, unpublishes it. A published block nobody
 * references stays cached until allocation needs room: then the least recently used one is evicted. A block
 * with references is never evicted.
 *
 * <p>Thread-safe: the scheduler may reserve for one sequence while another is released.
 */
public final class PagedKvCache {
    private final int blockSize;
    private final int totalBlocks;
    /** Free block ids, used as a stack so recently freed (cache-warm) blocks are reused first. */
    private final int[] freeStack;
    private int freeCount;
    /** Table entries holding each block. */
    private final int[] references;
    private int blocksInUse;
    /** Null without prefix caching. */
    private final PrefixIndex prefixes;
    private final List<BlockStorage> storages = new CopyOnWriteArrayList<>();
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

    /**
     * One model's K/V values over this pool, for copy-on-write: copies positions {@code [0, positions)} of block
     * {@code from} into block {@code to}, ordered before any later pass that reads or writes {@code to}.
     */
    public interface BlockStorage {
        void copyPositions(int from, int to, int positions);
    }

    /** A sequence's blocks in position order, and how many positions it has reserved. */
    private static final class Table {
        int[] blocks = new int[8];
        int blockCount;
        int length;
    }

    /** A pool without prefix caching. */
    public PagedKvCache(int blockSize, int totalBlocks) {
        this(blockSize, totalBlocks, null);
    }

    /**
     * A pool with prefix caching when {@code prefixIdentity} is not null: it names what the blocks' values depend
     * on besides the tokens (the models and the K/V type), and seeds every content key.
     */
    public PagedKvCache(int blockSize, int totalBlocks, String prefixIdentity) {
        if (blockSize < 1 || totalBlocks < 1) throw new IllegalArgumentException("block size and block count must be positive");
        this.blockSize = blockSize;
        this.totalBlocks = totalBlocks;
        this.freeStack = new int[totalBlocks];
        for (int i = 0; i < totalBlocks; i++) freeStack[i] = totalBlocks - 1 - i;
        this.freeCount = totalBlocks;
        this.references = new int[totalBlocks];
        this.prefixes = prefixIdentity == null ? null : new PrefixIndex(blockSize, totalBlocks, prefixIdentity);
    }

    /**
     * A pool sized from a memory budget: {@code bytesPerPosition} is the sum over the models sharing it of
     * {@link LoadedModel#kvBytesPerPosition()}.
     */
    public static PagedKvCache forBudget(long budgetBytes, long bytesPerPosition, int blockSize) {
        return forBudget(budgetBytes, bytesPerPosition, blockSize, null);
    }

    /** {@link #forBudget(long, long, int)} with prefix caching under {@code prefixIdentity} (null: none). */
    public static PagedKvCache forBudget(long budgetBytes, long bytesPerPosition, int blockSize, String prefixIdentity) {
        long blocks = budgetBytes / (bytesPerPosition * blockSize);
        if (blocks < 1) {
            throw new KvCacheExhaustedException("a K/V budget of " + budgetBytes + " bytes does not hold one block of "
                    + blockSize + " positions (" + bytesPerPosition * blockSize + " bytes)");
        }
        return new PagedKvCache(blockSize, (int) Math.min(blocks, Integer.MAX_VALUE / 2), prefixIdentity);
    }

    public int blockSize() { return blockSize; }

    public int totalBlocks() { return totalBlocks; }

    /** Blocks allocation can take: the free ones and the cached ones nobody references (evicted on demand). */
    public synchronized int freeBlocks() { return totalBlocks - blocksInUse; }

    /** Blocks some sequence's table holds. */
    public synchronized int blocksInUse() { return blocksInUse; }

    /** Published blocks nobody references: cached prefixes kept until allocation needs their room. */
    public synchronized int cachedBlocks() { return prefixes == null ? 0 : prefixes.idleCount(); }

    /** Whether this pool caches prefixes. */
    public boolean cachesPrefixes() { return prefixes != null; }

    /** Tells this pool of a storage's values, for copy-on-write; until {@link #detachStorage}. */
    public void attachStorage(BlockStorage storage) { storages.add(storage); }

    public void detachStorage(BlockStorage storage) { storages.remove(storage); }

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
        int available = totalBlocks - blocksInUse;
        if (needed > available) {
            throw new KvCacheExhaustedException("K/V cache exhausted: sequence " + seq + " needs " + needed + " more blocks of "
                    + blockSize + " positions to reach length " + length + ", but only " + available + " of " + totalBlocks + " are free");
        }
        grow(t, needed);
        for (int i = 0; i < needed; i++) t.blocks[t.blockCount++] = take();
        t.length = length;
    }

    private static void grow(Table t, int more) {
        if (t.blockCount + more > t.blocks.length) t.blocks = Arrays.copyOf(t.blocks, Math.max(t.blocks.length * 2, t.blockCount + more));
    }

    /** A block for a new table entry: a free one, else the least recently used cached one. The caller checked room. */
    private int take() {
        int block = freeCount > 0 ? freeStack[--freeCount] : prefixes.evictOldest();
        references[block] = 1;
        blocksInUse++;
        return block;
    }

    /** Another table entry holds {@code block}. */
    private void hold(int block) {
        if (references[block]++ == 0) {
            blocksInUse++;
            prefixes.inUse(block);
        }
    }

    /** A table entry let go of {@code block}: with no references left it is cached when published, else free. */
    private void drop(int block) {
        if (references[block] <= 0) throw new IllegalStateException("block " + block + " dropped more often than held");
        if (--references[block] > 0) return;
        blocksInUse--;
        if (prefixes != null && prefixes.published(block) != null) prefixes.becameIdle(block);
        else freeStack[freeCount++] = block;
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

    /**
     * Drops the blocks past {@code length}, the last first (so a cached prefix's first blocks are the most recently
     * used), and makes a partly kept block private: later writes land on positions it holds for others.
     */
    private void shorten(Table t, int length) {
        int keep = (length + blockSize - 1) / blockSize;
        int partial = length % blockSize;
        if (partial != 0 && prefixes != null) {
            int block = t.blocks[keep - 1];
            if (references[block] > 1) {
                if (blocksInUse == totalBlocks) {
                    throw new KvCacheExhaustedException("K/V cache exhausted: truncating into block " + block + ", which other sequences share, "
                            + "needs a private copy, but none of " + totalBlocks + " blocks is free");
                }
                int copy = take();
                for (BlockStorage s : storages) s.copyPositions(block, copy, partial);
                drop(block);
                t.blocks[keep - 1] = copy;
            } else {
                prefixes.unpublish(block);
            }
        }
        while (t.blockCount > keep) drop(t.blocks[--t.blockCount]);
        t.length = length;
    }

    /** Ends {@code seq}, letting go of all its blocks (published ones stay cached). */
    public synchronized void release(int seq) {
        shorten(table(seq), 0);
        tables.remove(seq);
    }

    /**
     * Gives the empty sequence {@code seq} the longest run of published blocks that hold {@code tokens[0, n)} for
     * some n &le; {@code maxLength}, written by at least the storages in {@code storages} (a bit each, as
     * {@link #publish} was told), and returns n: a multiple of the block size, 0 without prefix caching or a hit.
     * The sequence's length becomes n; its values for positions {@code [0, n)} are there to read.
     */
    public synchronized int shareCachedPrefix(int seq, int[] tokens, int maxLength, int storages) {
        Table t = table(seq);
        if (t.length != 0) throw new IllegalStateException("sequence " + seq + " is not empty (length " + t.length + ")");
        if (prefixes == null) return 0;
        int blocks = Math.min(maxLength, tokens.length) / blockSize;
        PrefixIndex.Entry parent = null;
        int n = 0;
        while (n < blocks) {
            PrefixIndex.Entry e = prefixes.find(parent, tokens, n * blockSize);
            if (e == null || (e.storages & storages) != storages) break;
            grow(t, 1);
            t.blocks[t.blockCount++] = e.block;
            hold(e.block);
            parent = e;
            n++;
        }
        t.length = n * blockSize;
        return t.length;
    }

    /**
     * {@code seq}'s positions {@code [0, length)} hold the K/V of {@code tokens[0, length)} in the storages named by
     * {@code storages} (and will not be rewritten unless truncated): publishes each full block among them, so that
     * later sequences starting with those tokens may share it. A block whose content is already published (and by
     * at least those storages) stays private. Does nothing without prefix caching.
     */
    public synchronized void publish(int seq, int[] tokens, int length, int storages) {
        Table t = table(seq);
        if (length > t.length || length > tokens.length) {
            throw new IllegalArgumentException("cannot publish " + length + " positions of sequence " + seq + " (length " + t.length
                    + ", " + tokens.length + " tokens)");
        }
        if (prefixes == null) return;
        int[] displaced = new int[1];
        PrefixIndex.Entry parent = null;
        for (int i = 0; i < length / blockSize; i++) {
            int block = t.blocks[i];
            PrefixIndex.Entry e = prefixes.published(block);
            if (e == null) {
                e = prefixes.publish(parent, tokens, i * blockSize, block, storages, displaced);
                if (e == null) return;        // a hash collision: the blocks from here on stay private
                int old = displaced[0];
                if (old >= 0 && references[old] == 0) freeStack[freeCount++] = old;
            } else if (!e.holds(parent, tokens, i * blockSize, blockSize)) {
                return;                       // the table does not hold what the caller says: publish nothing more
            }
            parent = e;
        }
    }

    /** Tells {@code observer} of every rollback from now on, until {@link #stopObserving}. */
    public void observeTruncation(TruncationObserver observer) { observers.add(observer); }

    public void stopObserving(TruncationObserver observer) { observers.remove(observer); }

    /** Table entries holding {@code block} (tests check reference counts against the tables). */
    public synchronized int references(int block) { return references[block]; }

    /** Whether {@code block} is published, i.e. holds a cached prefix's values. */
    public synchronized boolean isPublished(int block) { return prefixes != null && prefixes.published(block) != null; }

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
