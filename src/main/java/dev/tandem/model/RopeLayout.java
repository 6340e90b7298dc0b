package dev.tandem.model;

/**
 * Which dimensions of a head RoPE rotates together. Stated once here: with {@code d} rotary dimensions,
 * {@link #ADJACENT} rotates pairs {@code (2i, 2i+1)} (llama.cpp's "normal" RoPE, used by Llama GGUFs whose Q/K
 * rows the converter permuted), and {@link #HALVES} rotates {@code (i, i + d/2)} (Hugging Face's
 * {@code rotate_half}, llama.cpp's NeoX RoPE, used by Qwen2 and by Llama weights in a Hugging Face folder).
 * Both use frequency index {@code i} for the pair.
 */
public enum RopeLayout {
    ADJACENT,
    HALVES
}
