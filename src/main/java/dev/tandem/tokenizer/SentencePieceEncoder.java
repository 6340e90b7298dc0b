package dev.tandem.tokenizer;

import java.nio.charset.StandardCharsets;

/**
 * SentencePiece tokenisation as llama.cpp does it ({@code llm_tokenizer_spm_session}): the text (spaces already
 * written as {@code ▁}) starts as one symbol per character; the adjacent pair whose concatenation is a
 * vocabulary entry with the highest score is merged (leftmost on equal score) until none is left. A final
 * symbol that is not a vocabulary entry becomes byte tokens {@code <0xXX>}.
 */
final class SentencePieceEncoder {
    private final Vocabulary vocab;
    private final int[] byteToken = new int[256];

    SentencePieceEncoder(Vocabulary vocab) {
        this.vocab = vocab;
        for (int b = 0; b < 256; b++) {
            // llama_vocab::byte_to_token: "<0xXX>", else the byte itself as a one-character token.
            int id = vocab.index.find(String.format("<0x%02X>", b));
            if (id < 0 && b < 0x80) id = vocab.index.find(String.valueOf((char) b));
            byteToken[b] = id;
        }
    }

    /** Per-call working memory. */
    final class Session {
        private int[] start = new int[64], length = new int[64], prev = new int[64], next = new int[64];
        private final MergeQueue queue = new MergeQueue();
        private String text;

        void encode(String escaped, IntList out) {
            text = escaped;
            int n = 0;
            int capacity = escaped.length();
            if (start.length < capacity) {
                start = new int[capacity];
                length = new int[capacity];
                prev = new int[capacity];
                next = new int[capacity];
            }
            for (int i = 0; i < escaped.length(); ) {
                int len = Character.charCount(escaped.codePointAt(i));
                start[n] = i;
                length[n] = len;
                prev[n] = n - 1;
                next[n] = n + 1;
                n++;
                i += len;
            }
            if (n == 0) return;
            next[n - 1] = -1;
            queue.clear();
            for (int i = 1; i < n; i++) offer(i - 1, i);

            // A queued pair is stale when either side has been merged since (its length changed or it is gone).
            while (!queue.isEmpty()) {
                queue.pop();
                int l = queue.topLeft, r = queue.topRight;
                if (length[l] == 0 || length[r] == 0 || length[l] + length[r] != queue.topSize) continue;
                length[l] += length[r];
                length[r] = 0;
                next[l] = next[r];
                if (next[r] >= 0) prev[next[r]] = l;
                offer(prev[l], l);
                offer(l, next[l]);
            }

            for (int i = 0; i >= 0; i = next[i]) {
                int id = vocab.index.find(text, start[i], start[i] + length[i]);
                if (id >= 0) {
                    out.add(id);
                    continue;
                }
                String piece = text.substring(start[i], start[i] + length[i]);
                for (byte b : piece.getBytes(StandardCharsets.UTF_8)) {
                    int t = byteToken[b & 0xFF];
                    if (t == Vocabulary.NONE) t = vocab.unk;   // llama.cpp would throw (std::out_of_range) here
                    if (t == Vocabulary.NONE) {
                        throw new TokenizerException("vocabulary has no token for byte 0x"
                                + Integer.toHexString(b & 0xFF) + " and no unknown token");
                    }
                    out.add(t);
                }
            }
        }

        private void offer(int l, int r) {
            if (l < 0 || r < 0) return;
            int end = start[r] + length[r];
            int id = vocab.index.find(text, start[l], end);
            if (id < 0) return;
            queue.push(-vocab.score[id], l, r, length[l] + length[r]);
        }
    }
}
