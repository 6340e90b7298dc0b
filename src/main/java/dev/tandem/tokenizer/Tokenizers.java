package dev.tandem.tokenizer;

import dev.tandem.model.ModelFile;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.model.gguf.GgufModelFile;
import java.nio.file.Path;

/** Where tokenizers come from: a GGUF file's {@code tokenizer.*} keys, or a Hugging Face folder. */
public final class Tokenizers {
    private Tokenizers() {}

    /** The tokenizer stored in a GGUF file; {@link TokenizerException} naming the file and key when unusable. */
    public static Tokenizer fromGguf(GgufFile file) {
        return new VocabularyTokenizer(GgufTokenizerData.read(file));
    }

    /**
     * The tokenizer of a Hugging Face folder ({@code tokenizer.model} or {@code tokenizer.json}, with
     * {@code tokenizer_config.json}, {@code added_tokens.json}, {@code config.json} when present), behaving as
     * llama.cpp does with the GGUF that {@code convert_hf_to_gguf.py} makes from the folder.
     */
    public static Tokenizer fromHfFolder(Path dir) {
        return new VocabularyTokenizer(HuggingFaceTokenizerFolder.read(dir));
    }

    /** The tokenizer that belongs to an opened model (its GGUF metadata, or its Hugging Face folder). */
    public static Tokenizer forModel(ModelFile model) {
        if (model instanceof GgufModelFile g) return fromGguf(g.gguf());
        return fromHfFolder(model.path());
    }

    /** A tokenizer from vocabulary data already in memory. */
    public static Tokenizer fromData(TokenizerData data) {
        return new VocabularyTokenizer(data);
    }
}
