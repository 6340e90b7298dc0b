package dev.tandem.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.testing.SharedData;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/** The reference engine's tokenisations ({@code shared/reference/tokenize/*.jsonl}) and the vocabularies they used. */
final class TokenizerReference {
    static final ObjectMapper JSON = new ObjectMapper();

    record Record(int line, String text, boolean addBos, boolean parseSpecial, int[] tokens, List<String> piecesHex,
                  String detok) {}

    private TokenizerReference() {}

    static List<Record> records(String name) {
        Path file = SharedData.reference("tokenize/" + name + ".jsonl");
        try {
            List<Record> out = new ArrayList<>();
            int line = 0;
            for (String s : Files.readAllLines(file)) {
                line++;
                JsonNode n = JSON.readTree(s);
                int[] tokens = new int[n.get("tokens").size()];
                for (int i = 0; i < tokens.length; i++) tokens[i] = n.get("tokens").get(i).asInt();
                List<String> pieces = new ArrayList<>();
                n.get("pieces_hex").forEach(p -> pieces.add(p.asText()));
                out.add(new Record(line, n.get("text").asText(), n.get("add_bos").asBoolean(),
                        n.get("parse_special").asBoolean(), tokens, pieces, n.get("detok").asText()));
            }
            return out;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static JsonNode meta(String name) {
        try {
            return JSON.readTree(SharedData.reference("tokenize/" + name + ".meta.json").toFile());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Path vocabGguf(String name) {
        return name.equals("kjv") ? SharedData.kjv("kjv-main-f32.gguf")
                : SharedData.root().resolve("models/tokenizers/" + name + "/vocab.gguf");
    }

    static Path hfFolder(String name) {
        return name.equals("kjv") ? SharedData.kjv("main-hf") : SharedData.root().resolve("models/tokenizers/" + name);
    }

    static Tokenizer fromGguf(String name) {
        try (GgufFile gguf = GgufFile.open(vocabGguf(name))) {
            return Tokenizers.fromGguf(gguf);
        }
    }

    static Tokenizer fromHf(String name) {
        return Tokenizers.fromHfFolder(hfFolder(name));
    }

    static String hex(byte[] bytes) {
        return HexFormat.of().formatHex(bytes);
    }
}
