package dev.tandem.runtime;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

/** Prefix caching in {@link PagedKvCache}: shared, reference-counted, immutable, evicted least recently used first. */
class PrefixCacheTest {
    static final int MAIN = 1, DRAFT = 2;

    static int[] tokens(int n, int seed) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = (i * 31 + seed * 7 + 3) % 1000;
        return t;
    }

    /** A sequence of {@code kv} holding {@code tokens}' first {@code n} positions, published. */
    static int written(PagedKvCache kv, int[] tokens, int n, int storages) {
        int s = kv.createSequence();
        kv.reserve(s, n);
        kv.publish(s, tokens, n, storages);
        return s;
    }

    @Test
    void aSequenceStartingWithPublishedBlocksSharesThemAndOnlyWholeBlocks() {
        PagedKvCache kv = new PagedKvCache(4, 16, "model");
        int[] t = tokens(11, 1);
        int a = written(kv, t, 11, MAIN);
        assertEquals(3, kv.blocksInUse());
        int b = kv.createSequence();
        assertEquals(8, kv.shareCachedPrefix(b, t, 11, MAIN), "two full blocks; positions 8..10 are a partial block");
        assertEquals(kv.block(a, 0), kv.block(b, 0));
        assertEquals(kv.block(a, 7), kv.block(b, 7));
        assertEquals(2, kv.references(kv.block(a, 0)));
        assertEquals(3, kv.blocksInUse(), "a shared block counts once");
        int c = kv.createSequence();
        assertEquals(4, kv.shareCachedPrefix(c, t, 7, MAIN), "no more than asked for");
        kv.reserve(b, 12);
        assertNotEquals(kv.block(a, 8), kv.block(b, 8), "past the shared prefix the blocks are private");
    }

    @Test
    void aHitComparesTheTokensOfTheWholePrefixNotOnlyItsHash() {
        PagedKvCache kv = new PagedKvCache(4, 16, "model");
        int[] t = tokens(12, 1);
        written(kv, t, 12, MAIN);
        int[] laterDiffers = t.clone();
        laterDiffers[9] = 999_999;
        int[] firstDiffers = t.clone();
        firstDiffers[0] = 999_999;
        assertEquals(8, kv.shareCachedPrefix(kv.createSequence(), laterDiffers, 12, MAIN));
        assertEquals(0, kv.shareCachedPrefix(kv.createSequence(), firstDiffers, 12, MAIN),
                "blocks 1 and 2 hold the same tokens, but after another prefix");
    }

    @Test
    void blocksAreServedOnlyToSequencesWhoseStoragesWroteThem() {
        PagedKvCache kv = new PagedKvCache(4, 16, "model");
        int[] t = tokens(12, 1);
        written(kv, t, 12, MAIN);
        assertEquals(0, kv.shareCachedPrefix(kv.createSequence(), t, 12, MAIN | DRAFT), "the draft never wrote these blocks");
        int both = written(kv, t, 12, MAIN | DRAFT);
        int s = kv.createSequence();
        assertEquals(12, kv.shareCachedPrefix(s, t, 12, MAIN | DRAFT), "a sequence that wrote both replaces the main-only entries");
        assertEquals(kv.block(both, 0), kv.block(s, 0));
        assertEquals(12, kv.shareCachedPrefix(kv.createSequence(), t, 12, MAIN), "and serves sequences that need the main model only");
    }

    @Test
    void poolsOfOtherModelsOrWithoutPrefixCachingShareNothing() {
        PagedKvCache off = new PagedKvCache(4, 16);
        int[] t = tokens(12, 1);
        written(off, t, 12, MAIN);
        assertEquals(0, off.shareCachedPrefix(off.createSequence(), t, 12, MAIN));
        assertFalse(off.cachesPrefixes());
        assertEquals(0, off.cachedBlocks());
    }

    @Test
    void theContentKeyDependsOnTheIdentityOfTheModelsAndKvTypeAndOnTheWholePrefix() {
        int[] t = tokens(8, 1);
        PrefixIndex f32 = new PrefixIndex(4, 8, "kv=F32;main.gguf:100"), f16 = new PrefixIndex(4, 8, "kv=F16;main.gguf:100");
        PrefixIndex other = new PrefixIndex(4, 8, "kv=F32;other.gguf:100");
        assertNotEquals(f32.key(null, t, 0), f16.key(null, t, 0));
        assertNotEquals(f32.key(null, t, 0), other.key(null, t, 0));
        int[] displaced = new int[1];
        PrefixIndex.Entry first = f32.publish(null, t, 0, 0, MAIN, displaced);
        int[] u = t.clone();
        u[0]++;
        PrefixIndex.Entry firstOfU = f32.publish(null, u, 0, 1, MAIN, displaced);
        assertNotEquals(f32.key(first, t, 4), f32.key(firstOfU, t, 4), "the same tokens after another prefix");
    }

    @Test
    void publishingPastWhatTheSequenceHoldsIsRefused() {
        PagedKvCache kv = new PagedKvCache(4, 16, "model");
        int[] t = tokens(12, 1);
        int s = kv.createSequence();
        kv.reserve(s, 12);
        kv.truncate(s, 6);
        assertThrows(IllegalArgumentException.class, () -> kv.publish(s, t, 12, MAIN), "positions 6.. were rolled back");
        kv.publish(s, t, 6, MAIN);
        assertEquals(4, kv.shareCachedPrefix(kv.createSequence(), t, 12, MAIN), "only the block below the truncation");
    }

    @Test
    void releasedPublishedBlocksStayCachedUntilThePoolNeedsTheirRoomThenTheLeastRecentlyUsedGoFirst() {
        PagedKvCache kv = new PagedKvCache(4, 6, "model");
        int[] older = tokens(8, 1), newer = tokens(8, 2);
        kv.release(written(kv, older, 8, MAIN));
        kv.release(written(kv, newer, 8, MAIN));
        assertEquals(0, kv.blocksInUse());
        assertEquals(4, kv.cachedBlocks());
        assertEquals(6, kv.freeBlocks(), "cached blocks nobody holds count as free");
        int big = kv.createSequence();
        kv.reserve(big, 12);                      // 2 free blocks, then the 1 least recently used cached block
        assertEquals(3, kv.cachedBlocks());
        assertEquals(4, kv.shareCachedPrefix(kv.createSequence(), older, 8, MAIN),
                "the older prefix lost its last block: a sequence lets go of its last block first, so it is evicted first");
        assertEquals(8, kv.shareCachedPrefix(kv.createSequence(), newer, 8, MAIN));
    }

    @Test
    void aBlockInUseIsNeverEvicted() {
        PagedKvCache kv = new PagedKvCache(4, 4, "model");
        int[] t = tokens(8, 1);
        int s = kv.createSequence();
        kv.release(written(kv, t, 8, MAIN));
        assertEquals(8, kv.shareCachedPrefix(s, t, 8, MAIN));
        int other = kv.createSequence();
        kv.reserve(other, 8);
        KvCacheExhaustedException e = assertThrows(KvCacheExhaustedException.class, () -> kv.reserve(other, 12));
        assertTrue(e.getMessage().contains("0 of 4 are free"), e.getMessage());
        assertEquals(8, kv.shareCachedPrefix(kv.createSequence(), t, 8, MAIN), "the held prefix is still cached");
    }

    /** A storage that records which token each slot holds, as a model's K/V would. */
    static final class TokenStorage implements PagedKvCache.BlockStorage {
        final int blockSize;
        final int[][] slots;
        int copies;

        TokenStorage(PagedKvCache kv) {
            blockSize = kv.blockSize();
            slots = new int[kv.totalBlocks()][kv.blockSize()];
            for (int[] b : slots) Arrays.fill(b, -1);
            kv.attachStorage(this);
        }

        @Override
        public void copyPositions(int from, int to, int positions) {
            System.arraycopy(slots[from], 0, slots[to], 0, positions);
            copies++;
        }

        /** A forward pass writing {@code tokens[from, to)} of {@code seq}: the blocks it writes must be its own. */
        void write(PagedKvCache kv, int seq, int[] tokens, int from, int to) {
            for (int p = from; p < to; p++) {
                int block = kv.block(seq, p);
                assertEquals(1, kv.references(block), "position " + p + " of sequence " + seq + " is written into a shared block");
                assertFalse(kv.isPublished(block), "position " + p + " of sequence " + seq + " is written into a published block");
                slots[block][p % blockSize] = tokens[p];
            }
        }

        void assertHolds(PagedKvCache kv, int seq, int[] tokens, int n) {
            for (int p = 0; p < n; p++) assertEquals(tokens[p], slots[kv.block(seq, p)][p % blockSize], "position " + p + " of sequence " + seq);
        }
    }

    @Test
    void truncatingIntoASharedBlockCopiesItAndLeavesTheSharedOneAsItWas() {
        PagedKvCache kv = new PagedKvCache(4, 8, "model");
        TokenStorage values = new TokenStorage(kv);
        int[] t = tokens(8, 1);
        int a = kv.createSequence();
        kv.reserve(a, 8);
        values.write(kv, a, t, 0, 8);
        kv.publish(a, t, 8, MAIN);
        int b = kv.createSequence();
        assertEquals(8, kv.shareCachedPrefix(b, t, 8, MAIN));
        int shared = kv.block(b, 4);
        kv.truncate(b, 6);                        // b will rewrite positions 6 and 7 of its second block
        assertNotEquals(shared, kv.block(b, 4), "b has a private copy");
        assertEquals(1, values.copies);
        values.assertHolds(kv, b, t, 6);
        int[] other = t.clone();
        other[6] = 500;
        other[7] = 501;
        kv.reserve(b, 8);
        values.write(kv, b, other, 6, 8);
        values.assertHolds(kv, a, t, 8);
        assertEquals(8, kv.shareCachedPrefix(kv.createSequence(), t, 8, MAIN), "the cached prefix is intact");
    }

    @Test
    void truncatingIntoAPublishedBlockNobodyElseHoldsUnpublishesIt() {
        PagedKvCache kv = new PagedKvCache(4, 8, "model");
        int[] t = tokens(8, 1);
        int a = written(kv, t, 8, MAIN);
        int block = kv.block(a, 4);
        kv.truncate(a, 6);
        assertEquals(block, kv.block(a, 4), "no copy needed");
        assertFalse(kv.isPublished(block));
        assertEquals(4, kv.shareCachedPrefix(kv.createSequence(), t, 8, MAIN));
    }

    /**
     * Many seeded random interleavings of share, append (reserve and write), publish, truncate, cancel (release,
     * also right after sharing, before any prefill) and eviction under pressure, over prompts that share prefixes:
     * after every step each block's reference count equals the table entries holding it, no block is both free and
     * held, a sequence only writes its own unpublished blocks, and every shared block holds exactly the tokens of
     * the sequence that shares it. At the end everything is released and every count is back to zero.
     */
    @Test
    void referenceCountsStayExactAndSharedValuesStayRightOverRandomInterleavings() {
        for (int seed = 0; seed < 40; seed++) {
            SplittableRandom random = new SplittableRandom(seed);
            int blockSize = 1 + random.nextInt(4), blocks = 8 + random.nextInt(24);
            PagedKvCache kv = new PagedKvCache(blockSize, blocks, "model");
            TokenStorage values = new TokenStorage(kv);
            int[][] bases = new int[3][];
            for (int i = 0; i < bases.length; i++) bases[i] = tokens(64, i);
            Map<Integer, int[]> contexts = new HashMap<>();
            Map<Integer, Integer> written = new HashMap<>();
            for (int step = 0; step < 400; step++) {
                List<Integer> live = new ArrayList<>(contexts.keySet());
                int op = random.nextInt(10);
                if (op < 2 || live.isEmpty()) {                        // a new sequence shares what it can
                    int[] ctx = bases[random.nextInt(bases.length)].clone();
                    for (int i = 8 + random.nextInt(56); i < ctx.length; i++) ctx[i] = random.nextInt(4);
                    int s = kv.createSequence();
                    int n = kv.shareCachedPrefix(s, ctx, random.nextInt(ctx.length), MAIN);
                    assertEquals(0, n % blockSize);
                    values.assertHolds(kv, s, ctx, n);
                    contexts.put(s, ctx);
                    written.put(s, n);
                } else {
                    int s = live.get(random.nextInt(live.size()));
                    int[] ctx = contexts.get(s);
                    int w = written.get(s);
                    switch (op) {
                        case 2, 3, 4 -> {                               // a pass appends; the pool may be exhausted
                            int to = Math.min(ctx.length, w + 1 + random.nextInt(blockSize * 3));
                            int inUse = kv.blocksInUse();
                            try {
                                kv.reserve(s, to);
                                values.write(kv, s, ctx, w, to);
                                written.put(s, to);
                            } catch (KvCacheExhaustedException e) {
                                assertEquals(inUse, kv.blocksInUse(), "a failed reserve changes nothing");
                            }
                        }
                        case 5, 6 -> kv.publish(s, ctx, random.nextInt(w + 1), MAIN);
                        case 7 -> {                                     // rollback, maybe into a shared block
                            int to = random.nextInt(w + 1);
                            try {
                                kv.truncate(s, to);
                                written.put(s, to);
                                values.assertHolds(kv, s, ctx, to);
                            } catch (KvCacheExhaustedException e) {
                                assertEquals(w, kv.length(s), "no room for the private copy: the sequence is as it was");
                                kv.truncate(s, to - to % blockSize);    // whole blocks need no copy
                                written.put(s, to - to % blockSize);
                            }
                        }
                        default -> {                                    // done or cancelled
                            kv.release(s);
                            contexts.remove(s);
                            written.remove(s);
                        }
                    }
                }
                assertCountsMatchTables(kv, contexts.keySet(), "seed " + seed + " step " + step);
            }
            for (int s : contexts.keySet()) kv.release(s);
            assertCountsMatchTables(kv, List.of(), "seed " + seed + " at the end");
            assertEquals(0, kv.blocksInUse());
            assertEquals(blocks, kv.freeBlocks());
        }
    }

    static void assertCountsMatchTables(PagedKvCache kv, Iterable<Integer> sequences, String where) {
        int[] held = new int[kv.totalBlocks()];
        for (int s : sequences) {
            int n = (kv.length(s) + kv.blockSize() - 1) / kv.blockSize();
            int[] table = kv.blockTable(s, null);
            for (int i = 0; i < n; i++) held[table[i]]++;
        }
        int inUse = 0;
        for (int b = 0; b < held.length; b++) {
            assertEquals(held[b], kv.references(b), where + ": references of block " + b);
            if (held[b] > 0) inUse++;
        }
        assertEquals(inUse, kv.blocksInUse(), where);
        assertEquals(kv.totalBlocks() - inUse, kv.freeBlocks(), where + ": free or cached, never both free and held");
        assertTrue(kv.cachedBlocks() <= kv.freeBlocks(), where);
    }
}
