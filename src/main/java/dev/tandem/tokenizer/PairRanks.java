package dev.tandem.tokenizer;

import java.util.Arrays;

/** An open-addressing map from a pair of symbol ids to its merge rank: the hot lookup of byte-level BPE. */
final class PairRanks {
    private static final long EMPTY = -1L;
    private final long[] keys;
    private final int[] ranks;
    private final int mask;

    PairRanks(int expected) {
        int capacity = Integer.highestOneBit(Math.max(4, expected * 2 - 1)) << 1;
        keys = new long[capacity];
        ranks = new int[capacity];
        mask = capacity - 1;
        Arrays.fill(keys, EMPTY);
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private int slot(long key) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h >>> 40) & mask;
    }

    /** Keeps the first rank given for a pair, as llama.cpp's {@code bpe_ranks.emplace} does. */
    void putIfAbsent(int left, int right, int rank) {
        long k = key(left, right);
        int i = slot(k);
        while (keys[i] != EMPTY) {
            if (keys[i] == k) return;
            i = (i + 1) & mask;
        }
        keys[i] = k;
        ranks[i] = rank;
    }

    /** The rank of merging {@code left} with {@code right}, or -1. */
    int get(int left, int right) {
        long k = key(left, right);
        int i = slot(k);
        while (true) {
            long at = keys[i];
            if (at == k) return ranks[i];
            if (at == EMPTY) return -1;
            i = (i + 1) & mask;
        }
    }
}
