/**
 * Tokenisation exactly as the reference engine (llama.cpp) does it: SentencePiece ({@code tokenizer.ggml.model
 * = "llama"}) and byte-level BPE ({@code "gpt2"}, pre-tokenizers {@code llama-bpe} and {@code qwen2}), special
 * and user-defined tokens in text, BOS/EOS rules, end-of-generation tokens, and decoding that never emits a
 * broken UTF-8 sequence ({@link dev.tandem.tokenizer.StreamDecoder}).
 *
 * <p>Entry points: {@link dev.tandem.tokenizer.Tokenizers#fromGguf} and
 * {@link dev.tandem.tokenizer.Tokenizers#fromHfFolder}. A Hugging Face folder behaves as llama.cpp behaves with
 * the GGUF that llama.cpp's {@code convert_hf_to_gguf.py} makes from that folder. That is not always what the
 * {@code transformers} library does with the same folder:
 * <ul>
 *   <li><b>No normaliser.</b> Qwen's tokenizer.json has an NFC normaliser; llama.cpp ignores it, so decomposed
 *       text ({@code "cafe\u0301"}) gives other tokens than in {@code transformers}.</li>
 *   <li><b>Tokens recognised by their text.</b> llama.cpp makes end-of-turn, FIM and end-of-generation tokens
 *       CONTROL by their text. Qwen's ordinary vocabulary entry {@code </s>} (id 128247) thereby becomes a
 *       special token: with parse_special the text {@code </s>} is that one token (transformers: three tokens),
 *       it decodes to nothing unless special tokens are rendered, and it ends generation.</li>
 *   <li><b>BOS for Llama 3.</b> The original Llama 3 tokenizer.json has only a ByteLevel post-processor, so
 *       transformers adds no BOS; the converter then writes no add-BOS key and llama.cpp defaults to adding BOS
 *       for {@code llama-bpe}. We add it, as llama.cpp does.</li>
 *   <li><b>Padding.</b> Ids below {@code config.json}'s {@code vocab_size} that the tokenizer lacks are
 *       {@code [PAD{id}]} UNUSED entries: they count in {@link dev.tandem.tokenizer.Tokenizer#vocabularySize},
 *       decode to nothing, and their text is ordinary text when encoding. Without a config.json there is no
 *       padding, and a missing {@code bos_token_id} leaves llama.cpp's default for BPE vocabularies (id 11).</li>
 *   <li><b>Special-token matching</b> is llama.cpp's: longest text first, exact matches only (no lstrip/rstrip
 *       or single-word rules from tokenizer.json), USER_DEFINED tokens matched even without parse_special.</li>
 *   <li><b>SentencePiece</b>: the space prefix is added at the start and after every special or user-defined
 *       token (llama.cpp's default {@code add_space_prefix}, whatever the model's {@code add_dummy_prefix});
 *       {@code added_tokens.json} entries become USER_DEFINED and {@code added_tokens_decoder} entries CONTROL
 *       or USER_DEFINED, as the converter writes them.</li>
 * </ul>
 *
 * <p>Where llama.cpp's result depends on unspecified order we pick one and say so: among several tokens whose
 * text marks them as end-of-turn, the EOT id is the earliest in llama.cpp's candidate list ({@code <|eot_id|>}
 * before {@code <|im_end|>} before {@code <|endoftext|>} ...), which is what llama.cpp reports for Llama 3
 * and Qwen; special tokens of equal length are tried in id order. Character classes ({@code \p{L}},
 * {@code \p{N}}) come from the JDK's Unicode tables, llama.cpp's from an earlier Unicode version: they can
 * differ only for characters assigned since.
 *
 * <p>Not supported (a {@link dev.tandem.tokenizer.TokenizerException} says so): other tokenizer kinds (WPM, UGM,
 * RWKV), other pre-tokenizers (including llama.cpp's "default"), and SentencePiece-style BPE tokenizer.json
 * files (byte_fallback) without a tokenizer.model.
 */
package dev.tandem.tokenizer;
