package dev.tandem.cli;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;

/** {@code tandem info}: what a model file holds. */
@Command(name = "info", mixinStandardHelpOptions = true,
        description = "Show a model's architecture, sizes, tensor types, tokenizer and context length.")
final class InfoCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin ModelOptions model;

    @Option(names = "--json", description = "Print one JSON object.")
    boolean json;

    @Override
    public Integer call() {
        try (ModelFile file = ModelFile.open(model.model())) {
            Tokenizer tokenizer = Tokenizers.forModel(file);
            Map<String, Object> info = describe(file, tokenizer);
            spec.commandLine().getOut().println(json ? Json.write(info) : text(info));
        }
        return 0;
    }

    static Map<String, Object> describe(ModelFile file, Tokenizer tokenizer) {
        ModelConfig c = file.config();
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("path", file.path().toString());
        m.put("format", file.format());
        m.put("name", c.name());
        m.put("architecture", c.architecture().ggufName());
        long params = 0;
        Map<String, Long> types = new TreeMap<>();
        for (Tensor t : file.tensors()) {
            params += t.elements();
            types.merge(t.type().name(), 1L, Long::sum);
        }
        m.put("parameters", params);
        m.put("weight_bytes", file.weightBytes());
        m.put("tensor_types", types);
        m.put("context_length", c.contextLength());
        m.put("vocabulary_size", c.vocabularySize());
        m.put("hidden_size", c.hiddenSize());
        m.put("layers", c.layers());
        m.put("heads", c.heads());
        m.put("kv_heads", c.kvHeads());
        m.put("head_dim", c.headDim());
        m.put("ffn_size", c.ffnSize());
        m.put("rope_theta", c.ropeTheta());
        m.put("rope_layout", c.ropeLayout().name().toLowerCase());
        m.put("rope_scaling", c.ropeFrequencyFactors() != null ? "llama3" : "none");
        m.put("qkv_bias", c.qkvBias());
        m.put("tied_embeddings", c.tiedEmbeddings());
        Map<String, Object> tok = new LinkedHashMap<>();
        tok.put("kind", tokenizer.kind().equals("llama") ? "sentencepiece" : "bpe");
        tok.put("model", tokenizer.kind());
        tok.put("pre_tokenizer", tokenizer.preTokenizer());
        tok.put("tokens", tokenizer.vocabularySize());
        tok.put("bos", tokenizer.bos());
        tok.put("eos", tokenizer.eos());
        tok.put("add_bos", tokenizer.addBos());
        tok.put("end_of_generation", tokenizer.endOfGenerationIds());
        tok.put("chat_template", tokenizer.chatTemplate().isPresent());
        m.put("tokenizer", tok);
        return m;
    }

    private static String text(Map<String, Object> info) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Object> e : info.entrySet()) {
            Object v = e.getValue();
            if (v instanceof Map<?, ?> sub && e.getKey().equals("tokenizer")) {
                sb.append("tokenizer:\n");
                sub.forEach((k, x) -> sb.append(String.format("  %-18s %s%n", k, x instanceof int[] a ? java.util.Arrays.toString(a) : x)));
            } else {
                if (e.getKey().equals("weight_bytes")) v = String.format("%,d (%.1f MB)", (Long) v, (Long) v / 1e6);
                if (e.getKey().equals("parameters")) v = String.format("%,d", (Long) v);
                sb.append(String.format("%-20s %s%n", e.getKey(), v));
            }
        }
        return sb.toString().stripTrailing();
    }

    static String typeName(TensorType t) { return t.name().toLowerCase(); }
}
