package dev.tandem.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Reads the reference engine's JSONL outputs. */
public final class ReferenceRecords {
    private ReferenceRecords() {}

    public record Generation(String prompt, int[] promptTokens, int[] tokens, String text) {}

    public static List<JsonNode> jsonl(Path file) {
        ObjectMapper mapper = new ObjectMapper();
        List<JsonNode> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(file)) {
                if (!line.isBlank()) out.add(mapper.readTree(line));
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return out;
    }

    public static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    public static List<Generation> generations(String file) {
        List<Generation> out = new ArrayList<>();
        for (JsonNode n : jsonl(SharedData.reference("generate/" + file))) {
            out.add(new Generation(n.get("prompt").asText(), ints(n.get("prompt_tokens")), ints(n.get("tokens")), n.get("text").asText()));
        }
        return out;
    }

    /** Length of the common prefix of two token sequences. */
    public static int matchingPrefix(int[] a, int[] b) {
        int n = Math.min(a.length, b.length), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
