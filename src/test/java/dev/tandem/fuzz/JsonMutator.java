package dev.tandem.fuzz;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.math.BigInteger;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A structured mutator of JSON documents (config.json, a safetensors header, tokenizer.json, a shard index):
 * it replaces a value anywhere in the tree by a boundary value of another kind (huge, negative, fractional,
 * a number as a string, a path out of the folder, null, an array, an object), removes or adds fields, nests
 * arrays thousands deep, or damages the text (truncation, a changed character).
 */
final class JsonMutator {
    record Result(String text, String description) {}

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final String DEEP = "\"@@deep@@\"";

    /** A place in the tree: a field of an object or an element of an array. */
    private record Slot(JsonNode container, String field, int index, String path) {}

    private JsonMutator() {}

    static Result mutate(JsonNode original, SplittableRandom r, List<String> extraKeys) {
        JsonNode root = original.deepCopy();
        List<Slot> slots = new ArrayList<>();
        collect(root, "", slots);
        int op = r.nextInt(100);
        String what;
        int depth = 0;
        if (op < 60 && !slots.isEmpty()) {
            Slot s = slots.get(r.nextInt(slots.size()));
            JsonNode v = interesting(r);
            set(s, v);
            what = s.path + " := " + v;
        } else if (op < 70 && !slots.isEmpty()) {
            Slot s = slots.get(r.nextInt(slots.size()));
            if (s.container instanceof ObjectNode o) o.remove(s.field);
            else ((ArrayNode) s.container).remove(s.index);
            what = "removed " + s.path;
        } else if (op < 80 && root instanceof ObjectNode o && !extraKeys.isEmpty()) {
            String key = extraKeys.get(r.nextInt(extraKeys.size()));
            JsonNode v = interesting(r);
            o.set(key, v);
            what = "added " + key + " := " + v;
        } else if (op < 86 && !slots.isEmpty()) {
            int[] depths = {10, 999, 1001, 5000};
            depth = depths[r.nextInt(depths.length)];
            Slot s = slots.get(r.nextInt(slots.size()));
            set(s, NODES.textNode("@@deep@@"));
            what = s.path + " := arrays nested " + depth + " deep";
        } else {
            String text = write(root);
            if (r.nextBoolean()) {
                int at = r.nextInt(Math.max(1, text.length()));
                return new Result(text.substring(0, at), "truncated to " + at + " characters");
            }
            int at = r.nextInt(Math.max(1, text.length()));
            String damage = "{}[]\",:0-9e.a\\";
            char c = damage.charAt(r.nextInt(damage.length()));
            return new Result(text.substring(0, at) + c + text.substring(Math.min(text.length(), at + 1)), "character " + at + " := " + c);
        }
        String text = write(root);
        if (depth > 0) text = text.replace(DEEP, "[".repeat(depth) + "]".repeat(depth));
        return new Result(text, what);
    }

    private static void collect(JsonNode node, String path, List<Slot> out) {
        if (node instanceof ObjectNode o) {
            for (var e : o.properties()) {
                String p = path + "." + e.getKey();
                out.add(new Slot(o, e.getKey(), -1, p));
                collect(e.getValue(), p, out);
            }
        } else if (node instanceof ArrayNode a) {
            for (int i = 0; i < a.size(); i++) {
                String p = path + "[" + i + "]";
                out.add(new Slot(a, null, i, p));
                collect(a.get(i), p, out);
            }
        }
    }

    private static void set(Slot s, JsonNode v) {
        if (s.container instanceof ObjectNode o) o.set(s.field, v);
        else ((ArrayNode) s.container).set(s.index, v);
    }

    static JsonNode interesting(SplittableRandom r) {
        return switch (r.nextInt(26)) {
            case 0 -> NODES.numberNode(0);
            case 1 -> NODES.numberNode(-1);
            case 2 -> NODES.numberNode(1);
            case 3 -> NODES.numberNode(3);
            case 4 -> NODES.numberNode(64);
            case 5 -> NODES.numberNode(4096);
            case 6 -> NODES.numberNode(Integer.MAX_VALUE);
            case 7 -> NODES.numberNode(1L << 31);
            case 8 -> NODES.numberNode((1L << 32) + 3);
            case 9 -> NODES.numberNode(Long.MAX_VALUE);
            case 10 -> NODES.numberNode(BigInteger.ONE.shiftLeft(70));
            case 11 -> NODES.numberNode(2.5);
            case 12 -> NODES.numberNode(3.0);
            case 13 -> NODES.numberNode(1e300);
            case 14 -> NODES.numberNode(1e-320);
            case 15 -> NODES.numberNode(2e9);
            case 16 -> NODES.textNode("1024");
            case 17 -> NODES.textNode("");
            case 18 -> NODES.textNode("../model.safetensors");
            case 19 -> NODES.textNode("/etc/passwd");
            case 20 -> NODES.textNode(r.nextBoolean() ? "F32" : "I8");
            case 21 -> NODES.nullNode();
            case 22 -> NODES.booleanNode(true);
            case 23 -> NODES.arrayNode();
            case 24 -> NODES.objectNode();
            default -> NODES.arrayNode().add(1).add(2).add(3);
        };
    }

    static String write(JsonNode node) {
        try {
            return JSON.writeValueAsString(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
