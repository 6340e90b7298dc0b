package dev.tandem.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Incremental decoding never emits part of a character, whatever the split of bytes over tokens. */
class StreamDecoderTest {

    @Test
    void byteFallbackTokensOfAnEmojiEmitNothingUntilTheCharacterIsComplete() {
        Tokenizer kjv = TokenizerReference.fromGguf("kjv");
        int[] tokens = kjv.encode("🙂", false, false);
        // "▁" then the four UTF-8 bytes F0 9F 99 82 as byte tokens <0xNN> (id = NN + 5, per the KJV README).
        assertEquals(5, tokens.length);
        byte[] utf8 = "🙂".getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < 4; i++) assertEquals((utf8[i] & 0xFF) + 5, tokens[i + 1]);

        StreamDecoder decoder = kjv.streamDecoder();
        assertEquals(" ", decoder.feed(tokens[0]));
        for (int i = 1; i < 4; i++) {
            assertEquals("", decoder.feed(tokens[i]), "after byte " + i + " of 4");
            assertTrue(decoder.hasPending());
        }
        assertEquals("🙂", decoder.feed(tokens[4]));
        assertFalse(decoder.hasPending());
        assertEquals("", decoder.flush());
    }

    @Test
    void everyPrefixOfAByteLevelStreamIsValidTextAndTheWholeIsTheDecodedText() {
        Tokenizer qwen = TokenizerReference.fromGguf("qwen3");
        String text = "naïve café — 日本語 🙂👍🏽 🇯🇵 and <think>x</think>";
        int[] tokens = qwen.encode(text, false, true);
        StreamDecoder decoder = qwen.streamDecoder(true);
        StringBuilder streamed = new StringBuilder();
        List<String> chunks = new ArrayList<>();
        for (int token : tokens) {
            String chunk = decoder.feed(token);
            chunks.add(chunk);
            assertValidUtf16(chunk);
            streamed.append(chunk);
            // What has been emitted is always a prefix of the full text: nothing is ever taken back.
            assertTrue(text.startsWith(streamed.toString()), "emitted " + streamed + " after " + chunks.size() + " tokens");
        }
        streamed.append(decoder.flush());
        assertEquals(text, streamed.toString());
        assertEquals(qwen.decode(tokens, false, true), streamed.toString());
    }

    @Test
    void bytesThatCanNeverFormACharacterBecomeReplacementCharactersAtOnce() {
        Tokenizer kjv = TokenizerReference.fromGguf("kjv");
        StreamDecoder decoder = kjv.streamDecoder();
        // <0xF0> starts a 4-byte sequence; <0x41> ('A') cannot continue it: U+FFFD, then 'A'.
        assertEquals("", decoder.feed(0xF0 + 5));
        assertEquals("\uFFFDA", decoder.feed(0x41 + 5));
        // A lone continuation byte never starts a character.
        assertEquals("\uFFFD", decoder.feed(0x80 + 5));
        // An unfinished sequence at the end is flushed as U+FFFD.
        assertEquals("", decoder.feed(0xE6 + 5));
        assertEquals("\uFFFD", decoder.flush());
    }

    @Test
    void specialTokensAreRenderedOnlyWhenAskedFor() {
        Tokenizer qwen = TokenizerReference.fromGguf("qwen3");
        int imEnd = 151645;
        assertEquals("", qwen.streamDecoder().feed(imEnd));
        assertEquals("<|im_end|>", qwen.streamDecoder(true).feed(imEnd));
    }

    private static void assertValidUtf16(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c)) {
                assertTrue(i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1)), "broken pair in " + s);
                i++;
            } else {
                assertFalse(Character.isLowSurrogate(c), "lone low surrogate in " + s);
            }
        }
    }
}
