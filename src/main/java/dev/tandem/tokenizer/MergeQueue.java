package dev.tandem.tokenizer;

import java.util.Arrays;

/**
 * A binary min-heap of candidate merges ordered by (priority, left index): the order in which llama.cpp's
 * tokenizers pop bigrams (BPE: lowest rank first; SentencePiece: highest score first, as negated priority;
 * ties: leftmost). Primitive arrays, reused across words, so merging allocates nothing per pair.
 */
final class MergeQueue {
    private float[] priority = new float[64];
    private int[] left = new int[64];
    private int[] right = new int[64];
    private int[] size = new int[64];
    private int count;

    /** Values of the last {@link #pop}. */
    float topPriority;
    int topLeft, topRight, topSize;

    void clear() {
        count = 0;
    }

    boolean isEmpty() {
        return count == 0;
    }

    void push(float p, int l, int r, int s) {
        if (count == priority.length) {
            int n = count * 2;
            priority = Arrays.copyOf(priority, n);
            left = Arrays.copyOf(left, n);
            right = Arrays.copyOf(right, n);
            size = Arrays.copyOf(size, n);
        }
        int i = count++;
        while (i > 0) {                              // sift up: parent must not come after the new entry
            int parent = (i - 1) >>> 1;
            if (!before(p, l, priority[parent], left[parent])) break;
            move(parent, i);
            i = parent;
        }
        set(i, p, l, r, s);
    }

    void pop() {
        topPriority = priority[0];
        topLeft = left[0];
        topRight = right[0];
        topSize = size[0];
        int last = --count;
        if (last == 0) return;
        float p = priority[last];
        int l = left[last], r = right[last], s = size[last];
        int i = 0;
        while (true) {                               // sift down the former last entry from the root
            int child = 2 * i + 1;
            if (child >= count) break;
            if (child + 1 < count && before(priority[child + 1], left[child + 1], priority[child], left[child])) child++;
            if (!before(priority[child], left[child], p, l)) break;
            move(child, i);
            i = child;
        }
        set(i, p, l, r, s);
    }

    private static boolean before(float p1, int l1, float p2, int l2) {
        return p1 < p2 || (p1 == p2 && l1 < l2);
    }

    private void move(int from, int to) {
        priority[to] = priority[from];
        left[to] = left[from];
        right[to] = right[from];
        size[to] = size[from];
    }

    private void set(int i, float p, int l, int r, int s) {
        priority[i] = p;
        left[i] = l;
        right[i] = r;
        size[i] = s;
    }
}
