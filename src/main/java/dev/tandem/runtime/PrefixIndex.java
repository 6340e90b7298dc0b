package dev.tandem.runtime;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * Which pool blocks hold the K/V of which token prefix: the content address of {@link PagedKvCache}'s prefix
 * caching, and the least-recently-used order of the published blocks nobody references. It knows nothing of
 * reference counts; the pool tells it when a block becomes idle or is used again.
 *
 * <p>A block's key chains hashes: the hash of its parent's key and its own {@code blockSize} token ids, seeded by
 * the pool's identity (the models and K/V type whose values the blocks hold), so a key stands for the whole
 * prefix up to the block's end. A hash alone never serves a block: a hit also compares the stored token ids and
 * the parent entry, so by induction the whole prefix is verified.
 */
final class PrefixIndex {
    /** One published block: its key, the entry of the block before it (null for the first), its token ids. */
    static final class Entry {
        final long key;
        final Entry parent;
        final int[] tokens;
        final int block;
        /** Which of the caller's K/V storages hold this block's values (a bit each). */
        int storages;

        Entry(long key, Entry parent, int[] tokens, int block, int storages) {
            this.key = key;
            this.parent = parent;
            this.tokens = tokens;
            this.block = block;
            this.storages = storages;
        }

        boolean holds(Entry parent, int[] tokens, int from, int blockSize) {
            return this.parent == parent && Arrays.equals(this.tokens, 0, blockSize, tokens, from, from + blockSize);
        }
    }

    private final int blockSize;
    private final long seed;
    private final Map<Long, Entry> byKey = new HashMap<>();
    private final Entry[] byBlock;
    /** Published blocks with no references, least recently used first: the ones allocation may evict. */
    private final LinkedHashSet<Integer> idle = new LinkedHashSet<>();

    PrefixIndex(int blockSize, int totalBlocks, String identity) {
        this.blockSize = blockSize;
        this.byBlock = new Entry[totalBlocks];
        long h = 0x6A09E667F3BCC908L;
        for (int i = 0; i < identity.length(); i++) h = mix(h, identity.charAt(i));
        this.seed = mix(h, identity.length());
    }

    private static long mix(long h, int value) {
        h = (h ^ value) * 0x9E3779B97F4A7C15L;
        return h ^ (h >>> 29);
    }

    /** The key of the block holding {@code tokens[from, from + blockSize)} after {@code parent} (null: the first block). */
    long key(Entry parent, int[] tokens, int from) {
        long h = parent == null ? seed : parent.key;
        for (int i = from; i < from + blockSize; i++) h = mix(h, tokens[i]);
        return h;
    }

    /** The entry of the block that holds {@code tokens[from, from + blockSize)} after {@code parent}, verified; or null. */
    Entry find(Entry parent, int[] tokens, int from) {
        Entry e = byKey.get(key(parent, tokens, from));
        return e != null && e.holds(parent, tokens, from, blockSize) ? e : null;
    }

    /** The entry of a published block, or null. */
    Entry published(int block) { return byBlock[block]; }

    /**
     * Publishes {@code block} as holding {@code tokens[from, from + blockSize)} after {@code parent}, written by
     * {@code storages}. Returns the entry that now stands for that content: the new one, or an existing one that
     * already covers those storages (then {@code block} stays unpublished). An existing entry that covers fewer
     * storages is replaced, and its block is returned through {@code displaced} (it is no longer published).
     * An entry whose parent is no longer published (an orphan, unreachable by {@link #find}) is replaced too.
     * Returns null on a hash collision with other content: that block and the ones after it are not published.
     */
    Entry publish(Entry parent, int[] tokens, int from, int block, int storages, int[] displaced) {
        displaced[0] = -1;
        long key = key(parent, tokens, from);
        Entry old = byKey.get(key);
        if (old != null) {
            boolean same = old.holds(parent, tokens, from, blockSize);
            if (!same && !isOrphan(old)) return null;
            if (same && ((old.storages | storages) == old.storages || (old.storages & storages) != old.storages)) return old;
            remove(old);
            displaced[0] = old.block;
        }
        Entry e = new Entry(key, parent, Arrays.copyOfRange(tokens, from, from + blockSize), block, storages);
        byKey.put(key, e);
        byBlock[block] = e;
        return e;
    }

    private boolean isOrphan(Entry e) { return e.parent != null && byBlock[e.parent.block] != e.parent; }

    /** Forgets {@code block}'s content (it is about to be overwritten, or its entry was replaced). */
    void unpublish(int block) {
        Entry e = byBlock[block];
        if (e != null) remove(e);
    }

    private void remove(Entry e) {
        if (byKey.get(e.key) == e) byKey.remove(e.key);
        byBlock[e.block] = null;
        idle.remove(e.block);
    }

    /** A published block lost its last reference: it becomes the most recently used of the evictable ones. */
    void becameIdle(int block) { idle.add(block); }

    /** A published idle block is referenced again. */
    void inUse(int block) { idle.remove(block); }

    int idleCount() { return idle.size(); }

    boolean isIdle(int block) { return idle.contains(block); }

    /** Unpublishes and returns the least recently used idle block. */
    int evictOldest() {
        Iterator<Integer> it = idle.iterator();
        int block = it.next();
        it.remove();
        remove(byBlock[block]);
        return block;
    }
}
