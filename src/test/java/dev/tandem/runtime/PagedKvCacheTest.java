package dev.tandem.runtime;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class PagedKvCacheTest {
    @Test
    void reservingTakesWholeBlocksAndTruncatingGivesThemBack() {
        PagedKvCache kv = new PagedKvCache(16, 10);
        int s = kv.createSequence();
        kv.reserve(s, 1);
        assertEquals(9, kv.freeBlocks());
        kv.reserve(s, 16);
        assertEquals(9, kv.freeBlocks(), "position 15 is still in the first block");
        kv.reserve(s, 17);
        assertEquals(8, kv.freeBlocks());
        kv.truncate(s, 16);
        assertEquals(9, kv.freeBlocks(), "rollback to 16 frees the second block");
        assertEquals(16, kv.length(s));
        kv.truncate(s, 5);
        assertEquals(9, kv.freeBlocks(), "a partly used block is kept");
        kv.release(s);
        assertEquals(10, kv.freeBlocks());
    }

    @Test
    void sequencesHaveTheirOwnBlocks() {
        PagedKvCache kv = new PagedKvCache(4, 8);
        int a = kv.createSequence(), b = kv.createSequence();
        kv.reserve(a, 8);
        kv.reserve(b, 8);
        assertNotEquals(kv.block(a, 0), kv.block(b, 0));
        assertEquals(kv.block(a, 0), kv.block(a, 3));
        assertNotEquals(kv.block(a, 3), kv.block(a, 4));
        int[] table = kv.blockTable(a, null);
        assertEquals(kv.block(a, 4), table[1]);
    }

    @Test
    void exhaustionIsAnErrorWithTheNumbersAndChangesNothing() {
        PagedKvCache kv = new PagedKvCache(16, 2);
        int s = kv.createSequence();
        kv.reserve(s, 20);
        KvCacheExhaustedException e = assertThrows(KvCacheExhaustedException.class, () -> kv.reserve(s, 100));
        assertTrue(e.getMessage().contains("needs 5 more blocks") && e.getMessage().contains("0 of 2 are free"), e.getMessage());
        assertEquals(20, kv.length(s), "a failed reserve leaves the sequence as it was");
        assertEquals(0, kv.freeBlocks());
    }

    @Test
    void unreservedPositionsCannotBeAddressed() {
        PagedKvCache kv = new PagedKvCache(16, 2);
        int s = kv.createSequence();
        kv.reserve(s, 3);
        assertThrows(IllegalStateException.class, () -> kv.block(s, 3));
        assertThrows(IllegalArgumentException.class, () -> kv.length(99));
    }

    @Test
    void sizedFromAMemoryBudget() {
        PagedKvCache kv = PagedKvCache.forBudget(1 << 20, 1024, 16);
        assertEquals(64, kv.totalBlocks());
        assertThrows(KvCacheExhaustedException.class, () -> PagedKvCache.forBudget(1000, 1024, 16));
    }
}
