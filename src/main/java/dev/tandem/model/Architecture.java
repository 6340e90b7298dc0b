package dev.tandem.model;

import java.nio.file.Path;

/** The model families Tandem runs. Both are decoder-only transformers with RMSNorm, RoPE, GQA and SwiGLU. */
public enum Architecture {
    /** Llama 2/3/3.1/3.2, TinyLlama, Mistral-style GQA: no biases, optional Llama 3 RoPE scaling. */
    LLAMA("llama"),
    /** Qwen 2 / 2.5, DeepSeek-R1-Distill-Qwen: Q/K/V biases, NeoX RoPE, often tied embeddings. */
    QWEN2("qwen2");

    private final String ggufName;

    Architecture(String ggufName) { this.ggufName = ggufName; }

    /** The name used in GGUF {@code general.architecture} and as the key prefix of its hyperparameters. */
    public String ggufName() { return ggufName; }

    public static Architecture fromGgufName(Path file, String name) {
        for (Architecture a : values()) if (a.ggufName.equals(name)) return a;
        throw new ModelFormatException(file, "unsupported architecture '" + name + "' (supported: llama, qwen2)");
    }
}
