package dev.tandem.decode;

import dev.tandem.tokenizer.Tokenizer;

import java.util.Optional;

/**
 * Whether a draft model may propose tokens to a main model: the ids must mean the same text. Required: the same
 * tokenizer kind and pre-tokenizer, the same BOS and EOS ids and add-BOS rule, vocabulary sizes that differ by
 * padding only (at most {@value #MAX_PADDING} ids, as Qwen pairs do), and identical token text on every shared
 * id. Draft logits beyond the shared range are masked by the drafter.
 */
public final class VocabularyCheck {
    /** Most extra ids one side may have (llama.cpp's SPEC_VOCAB_MAX_SIZE_DIFFERENCE). */
    public static final int MAX_PADDING = 128;

    private VocabularyCheck() {}

    /** Throws {@link IncompatibleDraftException} naming the first reason the pair is incompatible. */
    public static void requireCompatible(Tokenizer main, Tokenizer draft) {
        Optional<String> reason = firstDifference(main, draft);
        if (reason.isPresent()) throw new IncompatibleDraftException("the draft model's vocabulary is incompatible: " + reason.get());
    }

    /** The first reason the pair is incompatible, or empty when the draft may serve the main model. */
    public static Optional<String> firstDifference(Tokenizer main, Tokenizer draft) {
        if (!main.kind().equals(draft.kind())) {
            return Optional.of("tokenizer type is '" + main.kind() + "' in main, '" + draft.kind() + "' in draft");
        }
        if (!main.preTokenizer().equals(draft.preTokenizer())) {
            return Optional.of("pre-tokenizer is '" + main.preTokenizer() + "' in main, '" + draft.preTokenizer() + "' in draft");
        }
        if (main.bos() != draft.bos()) return Optional.of("BOS is token " + main.bos() + " in main, " + draft.bos() + " in draft");
        if (main.eos() != draft.eos()) return Optional.of("EOS is token " + main.eos() + " in main, " + draft.eos() + " in draft");
        if (main.addBos() != draft.addBos()) {
            return Optional.of("main " + (main.addBos() ? "adds" : "does not add") + " BOS, draft " + (draft.addBos() ? "does" : "does not"));
        }
        int difference = Math.abs(main.vocabularySize() - draft.vocabularySize());
        if (difference > MAX_PADDING) {
            return Optional.of("vocabulary sizes " + main.vocabularySize() + " (main) and " + draft.vocabularySize()
                    + " (draft) differ by " + difference + ", more than the " + MAX_PADDING + " padding ids allowed");
        }
        for (int id = 0, shared = sharedVocabulary(main, draft); id < shared; id++) {
            String a = main.tokenText(id), b = draft.tokenText(id);
            if (!a.equals(b)) return Optional.of("token " + id + " is '" + a + "' in main, '" + b + "' in draft");
        }
        return Optional.empty();
    }

    /** Ids both models know: the draft's logits at and beyond this are masked. */
    public static int sharedVocabulary(Tokenizer main, Tokenizer draft) {
        return Math.min(main.vocabularySize(), draft.vocabularySize());
    }
}
