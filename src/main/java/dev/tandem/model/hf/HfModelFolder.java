package dev.tandem.model.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.model.Architecture;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.ModelFormatException;
import dev.tandem.model.ModelLimits;
import dev.tandem.model.RopeLayout;
import dev.tandem.model.Tensor;
import dev.tandem.model.WeightCheck;
import dev.tandem.model.safetensors.SafetensorsFile;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A Hugging Face model folder: {@code config.json} plus {@code model.safetensors} or the shards listed by
 * {@code model.safetensors.index.json}. Tensors are renamed to GGUF names; Q/K rows stay in Hugging Face's
 * layout, so RoPE uses {@link RopeLayout#HALVES} (the {@code rotate_half} pairing) instead of permuting rows.
 */
public final class HfModelFolder implements ModelFile {
    private static final Pattern LAYER = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)");
    private static final Map<String, String> LAYER_NAMES = Map.ofEntries(
            Map.entry("input_layernorm.weight", "attn_norm.weight"),
            Map.entry("self_attn.q_proj.weight", "attn_q.weight"),
            Map.entry("self_attn.k_proj.weight", "attn_k.weight"),
            Map.entry("self_attn.v_proj.weight", "attn_v.weight"),
            Map.entry("self_attn.q_proj.bias", "attn_q.bias"),
            Map.entry("self_attn.k_proj.bias", "attn_k.bias"),
            Map.entry("self_attn.v_proj.bias", "attn_v.bias"),
            Map.entry("self_attn.o_proj.weight", "attn_output.weight"),
            Map.entry("post_attention_layernorm.weight", "ffn_norm.weight"),
            Map.entry("mlp.gate_proj.weight", "ffn_gate.weight"),
            Map.entry("mlp.up_proj.weight", "ffn_up.weight"),
            Map.entry("mlp.down_proj.weight", "ffn_down.weight"));

    private final Path dir;
    private final List<SafetensorsFile> shards;
    private final Map<String, Tensor> tensors;
    private final ModelConfig config;
    private final JsonNode configJson;

    private HfModelFolder(Path dir, List<SafetensorsFile> shards, JsonNode configJson) {
        this.dir = dir;
        this.shards = shards;
        this.configJson = configJson;
        Map<String, Tensor> ts = new LinkedHashMap<>();
        for (SafetensorsFile shard : shards) {
            for (Tensor t : shard.tensors().values()) {
                String name = ggufName(t.name());
                if (name != null) ts.put(name, new Tensor(name, t.type(), t.shape(), t.data()));
            }
        }
        this.tensors = Collections.unmodifiableMap(ts);
        this.config = readConfig(dir, configJson, ts);
        WeightCheck.check(this);
    }

    public static HfModelFolder open(Path dir) {
        Path configPath = dir.resolve("config.json");
        if (!Files.isRegularFile(configPath)) {
            throw new ModelFormatException(dir, "Hugging Face folder is missing config.json");
        }
        JsonNode cfg;
        try {
            cfg = new ObjectMapper().readTree(configPath.toFile());
        } catch (IOException e) {
            throw new ModelFormatException(configPath, "unreadable JSON: " + e.getMessage());
        }
        List<SafetensorsFile> shards = new ArrayList<>();
        try {
            for (Path shard : shardPaths(dir)) shards.add(SafetensorsFile.open(shard));
            return new HfModelFolder(dir, shards, cfg);
        } catch (RuntimeException e) {
            shards.forEach(SafetensorsFile::close);
            throw e;
        }
    }

    private static List<Path> shardPaths(Path dir) {
        Path single = dir.resolve("model.safetensors");
        if (Files.isRegularFile(single)) return List.of(single);
        Path index = dir.resolve("model.safetensors.index.json");
        if (!Files.isRegularFile(index)) {
            throw new ModelFormatException(dir, "Hugging Face folder has neither model.safetensors nor model.safetensors.index.json");
        }
        JsonNode map;
        try {
            map = new ObjectMapper().readTree(index.toFile()).path("weight_map");
        } catch (IOException e) {
            throw new ModelFormatException(index, "unreadable JSON: " + e.getMessage());
        }
        if (!map.isObject() || map.isEmpty()) throw new ModelFormatException(index, "no 'weight_map' in the index");
        Set<String> files = new LinkedHashSet<>();
        for (Iterator<JsonNode> it = map.elements(); it.hasNext(); ) {
            JsonNode f = it.next();
            if (!f.isTextual()) throw new ModelFormatException(index, "'weight_map' lists a shard that is not a file name: " + f);
            files.add(f.asText());
        }
        List<Path> paths = new ArrayList<>();
        for (String f : files) paths.add(shardInside(dir, index, f));
        return paths;
    }

    /**
     * The shard {@code name} as a file of {@code dir}: a relative name that stays inside the folder. An index is
     * part of a downloaded folder, so it may not point a reader at {@code /etc/passwd} or {@code ../elsewhere}.
     * Symbolic links are followed as they are: the Hugging Face cache links each snapshot file to a blob outside
     * the snapshot folder, and whoever placed a link there chose its target.
     */
    private static Path shardInside(Path dir, Path index, String name) {
        Path folder = dir.toAbsolutePath().normalize();
        Path p;
        try {
            p = folder.resolve(name).normalize();
        } catch (java.nio.file.InvalidPathException e) {
            throw new ModelFormatException(index, "lists shard '" + name + "', which is not a valid file name");
        }
        if (name.isEmpty() || Path.of(name).isAbsolute() || !p.startsWith(folder) || p.equals(folder)) {
            throw new ModelFormatException(index, "lists shard '" + name + "', which lies outside the model folder " + folder);
        }
        if (!Files.isRegularFile(p)) throw new ModelFormatException(index, "lists shard '" + name + "', which is missing from the folder");
        return p;
    }

    /** The GGUF name for a Hugging Face tensor name, or {@code null} for tensors Tandem does not use. */
    static String ggufName(String hf) {
        switch (hf) {
            case "model.embed_tokens.weight": return "token_embd.weight";
            case "model.norm.weight": return "output_norm.weight";
            case "lm_head.weight": return "output.weight";
            default:
        }
        Matcher m = LAYER.matcher(hf);
        if (m.matches()) {
            String rest = LAYER_NAMES.get(m.group(2));
            return rest == null ? null : "blk." + m.group(1) + "." + rest;
        }
        return null;
    }

    private static ModelConfig readConfig(Path dir, JsonNode c, Map<String, Tensor> tensors) {
        Path file = dir.resolve("config.json");
        if (!c.isObject()) throw new ModelFormatException(file, "should be a JSON object");
        String type = c.path("model_type").asText("");
        Architecture arch = switch (type) {
            case "llama", "mistral" -> Architecture.LLAMA;
            case "qwen2" -> Architecture.QWEN2;
            default -> throw new ModelFormatException(file, "unsupported model_type '" + type + "' (supported: llama, mistral, qwen2)");
        };
        int hidden = integer(file, c, "hidden_size", null, ModelLimits.MAX_HIDDEN);
        int heads = integer(file, c, "num_attention_heads", null, ModelLimits.MAX_HEADS);
        int kvHeads = integer(file, c, "num_key_value_heads", heads, heads);
        int headDim = integer(file, c, "head_dim", hidden / heads, ModelLimits.MAX_HEAD_DIM);
        int vocab = integer(file, c, "vocab_size", null, ModelLimits.MAX_VOCABULARY);
        int layers = integer(file, c, "num_hidden_layers", null, ModelLimits.MAX_LAYERS);
        ModelLimits.checkLayersPresent(file, "num_hidden_layers", layers, tensors.keySet());
        int ffn = integer(file, c, "intermediate_size", null, ModelLimits.MAX_FFN);
        int context = integer(file, c, "max_position_embeddings", 4096, ModelLimits.MAX_CONTEXT);
        float eps = number(file, c, "rms_norm_eps", 1e-6, 1);
        float theta = number(file, c, "rope_theta", 10000.0, Float.MAX_VALUE);
        float[] factors = null;
        JsonNode scaling = c.path("rope_scaling");
        if (scaling.isObject()) {
            String kind = scaling.path("rope_type").asText(scaling.path("type").asText(""));
            if (!kind.equals("llama3")) {
                throw new ModelFormatException(file, "rope_scaling type '" + kind + "' is not supported (supported: llama3)");
            }
            factors = ModelConfig.llama3FrequencyFactors(headDim, theta,
                    number(file, scaling, "factor", 8, 1e6), number(file, scaling, "low_freq_factor", 1, 1e6),
                    number(file, scaling, "high_freq_factor", 4, 1e6),
                    integer(file, scaling, "original_max_position_embeddings", 8192, ModelLimits.MAX_CONTEXT));
        } else if (!scaling.isMissingNode() && !scaling.isNull()) {
            throw new ModelFormatException(file, "'rope_scaling' should be an object or null, found " + scaling);
        }
        boolean tied = !tensors.containsKey("output.weight");
        ModelConfig config;
        try {
            config = new ModelConfig(arch, dir.getFileName().toString(), vocab, hidden, layers, heads, kvHeads, headDim, ffn,
                    context, eps, theta, headDim, RopeLayout.HALVES, factors, tensors.containsKey("blk.0.attn_q.bias"), tied);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, e.getMessage());
        }
        ModelLimits.checkConfig(file, config);
        return config;
    }

    /**
     * An integer of {@code config.json} in 1..max: absent or null gives {@code fallback} (required when that is
     * null); a fraction, a string or a number out of range is an error naming the key, never a default.
     */
    private static int integer(Path file, JsonNode c, String key, Integer fallback, long max) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) {
            if (fallback == null) throw new ModelFormatException(file, "missing required key '" + key + "'");
            return ModelLimits.count(file, key + " (default)", fallback, 1, max);
        }
        if (!v.isIntegralNumber()) throw new ModelFormatException(file, "'" + key + "' should be an integer, found " + v);
        if (!v.canConvertToLong()) throw new ModelFormatException(file, "'" + key + "' is " + v + "; allowed: 1 to " + max);
        return ModelLimits.count(file, key, v.asLong(), 1, max);
    }

    /** A positive finite number of {@code config.json} below {@code high}; absent or null gives {@code fallback}. */
    private static float number(Path file, JsonNode c, String key, double fallback, double high) {
        JsonNode v = c.get(key);
        if (v == null || v.isNull()) return (float) fallback;
        if (!v.isNumber()) throw new ModelFormatException(file, "'" + key + "' should be a number, found " + v);
        return ModelLimits.positive(file, key, v.asDouble(), high);
    }

    /** The parsed {@code config.json}. */
    public JsonNode configJson() { return configJson; }

    @Override public Path path() { return dir; }

    @Override public String format() { return "hf"; }

    @Override public ModelConfig config() { return config; }

    @Override public Collection<Tensor> tensors() { return tensors.values(); }

    @Override public Optional<Tensor> findTensor(String name) { return Optional.ofNullable(tensors.get(name)); }

    @Override public void close() { shards.forEach(SafetensorsFile::close); }
}
