package dev.tandem.model.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.model.Architecture;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.ModelFormatException;
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
        for (Iterator<JsonNode> it = map.elements(); it.hasNext(); ) files.add(it.next().asText());
        List<Path> paths = new ArrayList<>();
        for (String f : files) {
            Path p = dir.resolve(f);
            if (!Files.isRegularFile(p)) throw new ModelFormatException(index, "lists shard '" + f + "', which is missing from the folder");
            paths.add(p);
        }
        return paths;
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
        String type = c.path("model_type").asText("");
        Architecture arch = switch (type) {
            case "llama", "mistral" -> Architecture.LLAMA;
            case "qwen2" -> Architecture.QWEN2;
            default -> throw new ModelFormatException(file, "unsupported model_type '" + type + "' (supported: llama, mistral, qwen2)");
        };
        int hidden = required(file, c, "hidden_size");
        int heads = required(file, c, "num_attention_heads");
        int kvHeads = c.has("num_key_value_heads") && !c.get("num_key_value_heads").isNull() ? c.get("num_key_value_heads").asInt() : heads;
        int headDim = c.hasNonNull("head_dim") ? c.get("head_dim").asInt() : hidden / heads;
        float theta = (float) c.path("rope_theta").asDouble(10000.0);
        float[] factors = null;
        JsonNode scaling = c.path("rope_scaling");
        if (scaling.isObject()) {
            String kind = scaling.path("rope_type").asText(scaling.path("type").asText(""));
            if (!kind.equals("llama3")) {
                throw new ModelFormatException(file, "rope_scaling type '" + kind + "' is not supported (supported: llama3)");
            }
            factors = ModelConfig.llama3FrequencyFactors(headDim, theta,
                    scaling.path("factor").asDouble(8), scaling.path("low_freq_factor").asDouble(1),
                    scaling.path("high_freq_factor").asDouble(4), scaling.path("original_max_position_embeddings").asInt(8192));
        }
        boolean tied = !tensors.containsKey("output.weight");
        try {
            return new ModelConfig(
                    arch,
                    dir.getFileName().toString(),
                    required(file, c, "vocab_size"),
                    hidden,
                    required(file, c, "num_hidden_layers"),
                    heads,
                    kvHeads,
                    headDim,
                    required(file, c, "intermediate_size"),
                    c.path("max_position_embeddings").asInt(4096),
                    (float) c.path("rms_norm_eps").asDouble(1e-6),
                    theta,
                    headDim,
                    RopeLayout.HALVES,
                    factors,
                    tensors.containsKey("blk.0.attn_q.bias"),
                    tied);
        } catch (IllegalArgumentException e) {
            throw new ModelFormatException(file, e.getMessage());
        }
    }

    private static int required(Path file, JsonNode c, String key) {
        JsonNode v = c.get(key);
        if (v == null || !v.canConvertToInt()) throw new ModelFormatException(file, "missing required key '" + key + "'");
        return v.asInt();
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
