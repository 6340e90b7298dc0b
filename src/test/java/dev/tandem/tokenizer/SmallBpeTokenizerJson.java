package dev.tandem.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A small byte-level BPE {@code tokenizer.json} (Qwen2's split regex): the 256 byte tokens, a few merges of
 * common English pairs, and two added special tokens. For tests and fuzzers that need a tokenizer.json
 * without reading a real one of megabytes.
 */
public final class SmallBpeTokenizerJson {
    private SmallBpeTokenizerJson() {}

    public static ObjectNode tree() {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode();
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE").put("byte_fallback", false);
        ObjectNode vocab = model.putObject("vocab");
        for (int b = 0; b < 256; b++) vocab.put(String.valueOf(ByteLevel.charOf(b)), b);
        ArrayNode merges = model.putArray("merges");
        String[][] pairs = {{"t", "h"}, {"th", "e"}, {"Ġ", "th"}, {"i", "n"}, {"Ġ", "b"}, {"e", "g"}, {"Ġ", "G"}, {"o", "d"}};
        int id = 256;
        for (String[] p : pairs) {
            merges.add(p[0] + " " + p[1]);
            if (!vocab.has(p[0] + p[1])) vocab.put(p[0] + p[1], id++);
        }
        ArrayNode added = root.putArray("added_tokens");
        added.addObject().put("id", id).put("content", "<|endoftext|>").put("special", true);
        added.addObject().put("id", id + 1).put("content", "<|im_end|>").put("special", true);
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Sequence");
        ArrayNode steps = pre.putArray("pretokenizers");
        steps.addObject().put("type", "Split").put("behavior", "Isolated").put("invert", false)
                .putObject("pattern").put("Regex", HuggingFaceTokenizerFolder.QWEN2_REGEX);
        steps.addObject().put("type", "ByteLevel").put("add_prefix_space", false).put("use_regex", false);
        return root;
    }
}
