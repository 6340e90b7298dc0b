package dev.tandem.tokenizer;

import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;

/**
 * Text to token ids and back, exactly as the reference engine (llama.cpp) does it for the same vocabulary.
 * Implementations are immutable and safe to share between threads; {@link StreamDecoder}s are not.
 */
public interface Tokenizer {
    /** Number of token ids, padding entries included (llama.cpp's {@code llama_vocab_n_tokens}). */
    int vocabularySize();

    /**
     * {@code llama_tokenize(text, addSpecial, parseSpecial)}: with {@code addSpecial} BOS/EOS are added when the
     * vocabulary asks for them; with {@code parseSpecial} the text of CONTROL and UNKNOWN tokens becomes those
     * tokens (USER_DEFINED tokens are always matched).
     */
    int[] encode(String text, boolean addSpecial, boolean parseSpecial);

    /** {@code llama_token_to_piece(id, lstrip 0, special)}: the bytes of one token (possibly part of a UTF-8 sequence). */
    byte[] tokenBytes(int id, boolean special);

    /** The vocabulary entry as stored (GPT-2 byte characters for byte-level BPE, {@code ▁} for SentencePiece). */
    String tokenText(int id);

    /** The attribute that decides this token's behaviour; see {@link TokenAttribute}. */
    TokenAttribute attribute(int id);

    /** Every attribute bit of this token after llama.cpp's load-time adjustments. */
    Set<TokenAttribute> attributes(int id);

    /** {@code llama_detokenize(tokens, removeSpecial, unparseSpecial)}, as a string (invalid UTF-8 becomes U+FFFD). */
    String decode(int[] tokens, boolean removeSpecial, boolean unparseSpecial);

    /** {@link #decode} before the bytes are turned into a string. */
    byte[] decodeBytes(int[] tokens, boolean removeSpecial, boolean unparseSpecial);

    /** An incremental decoder that renders special tokens as nothing (as llama-server does by default). */
    default StreamDecoder streamDecoder() {
        return streamDecoder(false);
    }

    /** An incremental decoder; with {@code special} CONTROL tokens are rendered as their text. */
    StreamDecoder streamDecoder(boolean special);

    int bos();

    int eos();

    OptionalInt eot();

    boolean addBos();

    boolean addEos();

    /** Whether generating this token ends generation ({@code llama_vocab_is_eog}). */
    boolean isEndOfGeneration(int id);

    /** The ids for which {@link #isEndOfGeneration} is true, ascending. */
    int[] endOfGenerationIds();

    /** "llama" (SentencePiece) or "gpt2" (byte-level BPE), as GGUF's {@code tokenizer.ggml.model}. */
    String kind();

    /** The pre-tokenizer name, as GGUF's {@code tokenizer.ggml.pre} ("llama-bpe", "qwen2", "default"). */
    String preTokenizer();

    Optional<String> chatTemplate();
}
