package dev.tandem.forge;

import dev.tandem.model.Architecture;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.SharedData;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

class ForgeTest {
    @TempDir Path tmp;

    static final ForgeSpec TINY = ForgeSpec.preset("tiny");
    static final int[][] PROMPTS = {{1, 300, 301, 302, 303, 304}, {1, 500, 17, 900, 42}, {1, 1000, 999, 998}};

    private Path forge(ForgeSpec spec, String name) throws IOException {
        Path p = tmp.resolve(name);
        Forge.write(spec, p);
        return p;
    }

    /** Logits of every row of {@code prompt}, run as one pass. */
    static float[][] logits(Path model, int[] prompt) {
        try (ModelFile file = ModelFile.open(model);
             LoadedModel m = new CpuBackend().load(file, LoadOptions.defaults().withThreads(2))) {
            PagedKvCache tables = new PagedKvCache(16, 4);
            try (KvCache kv = m.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, prompt.length);
                ForwardResult r = m.forward(Batch.of(seq, 0, prompt, true), kv);
                float[][] out = new float[r.rows()][r.vocabularySize()];
                for (int i = 0; i < r.rows(); i++) r.copyLogits(i, out[i]);
                return out;
            }
        }
    }

    /** Greedy continuation of {@code prompt}, {@code count} tokens, one token per pass after the prompt. */
    static int[] greedy(Path model, int[] prompt, int count) {
        try (ModelFile file = ModelFile.open(model);
             LoadedModel m = new CpuBackend().load(file, LoadOptions.defaults().withThreads(2))) {
            PagedKvCache tables = new PagedKvCache(16, (prompt.length + count) / 16 + 2);
            try (KvCache kv = m.createKvCache(tables)) {
                int seq = tables.createSequence();
                tables.reserve(seq, prompt.length);
                int next = m.forward(Batch.of(seq, 0, prompt, false), kv).argmax(0);
                int[] out = new int[count];
                for (int i = 0; i < count; i++) {
                    out[i] = next;
                    tables.reserve(seq, prompt.length + i + 1);
                    next = m.forward(Batch.of(seq, prompt.length + i, new int[] {next}, false), kv).argmax(0);
                }
                return out;
            }
        }
    }

    static double rms(float[] v) {
        double s = 0;
        for (float x : v) s += (double) x * x;
        return Math.sqrt(s / v.length);
    }

    static double stdDev(float[] v) {
        double mean = 0;
        for (float x : v) mean += x;
        mean /= v.length;
        double s = 0;
        for (float x : v) s += (x - mean) * (x - mean);
        return Math.sqrt(s / v.length);
    }

    static Stream<Arguments> everyArchitectureAndType() {
        return Stream.of(Architecture.values()).flatMap(a -> Stream.of(ForgeType.values()).map(t -> Arguments.of(a, t)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("everyArchitectureAndType")
    void aForgedModelLoadsAndGivesVariedFiniteLogits(Architecture arch, ForgeType type) throws IOException {
        ForgeSpec spec = TINY.withArchitecture(arch).withType(type).withTied(arch == Architecture.QWEN2);
        Path p = forge(spec, "m.gguf");
        try (ModelFile f = ModelFile.open(p)) {
            ModelConfig c = f.config();
            assertEquals(arch, c.architecture());
            assertEquals(spec.vocab(), c.vocabularySize());
            assertEquals(spec.layers(), c.layers());
            assertEquals(spec.tied(), c.tiedEmbeddings());
            assertEquals(arch == Architecture.QWEN2, c.qkvBias());
            assertEquals(type.matrixType("blk.0.attn_q.weight", spec.layers(), spec.tied()), f.tensor("blk.0.attn_q.weight").type());
            assertEquals(TensorType.F32, f.tensor("blk.0.attn_norm.weight").type());
        }
        float[][] logits = logits(p, PROMPTS[0]);
        int[] argmax = new int[logits.length];
        for (int r = 0; r < logits.length; r++) {
            for (float x : logits[r]) assertTrue(Float.isFinite(x), "row " + r + " has a non-finite logit");
            double std = stdDev(logits[r]);
            assertTrue(std > 1 && std < 10, "row " + r + " logit spread " + std + " is near the intended " + Forge.LOGIT_STD);
            argmax[r] = argmaxOf(logits[r]);
        }
        assertTrue(Arrays.stream(argmax).distinct().count() > 1, "the best token depends on the input: " + Arrays.toString(argmax));
    }

    static int argmaxOf(float[] v) {
        int best = 0;
        for (int i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    @Test
    void theSameSpecGivesTheSameBytesAndAnotherSeedOtherWeights() throws IOException {
        ForgeSpec spec = TINY.withType(ForgeType.Q4_K_M);
        byte[] a = Files.readAllBytes(forge(spec, "a.gguf"));
        byte[] b = Files.readAllBytes(forge(spec, "b.gguf"));
        assertArrayEquals(a, b);
        byte[] c = Files.readAllBytes(forge(spec.withSeed(2), "c.gguf"));
        assertFalse(Arrays.equals(a, c));
    }

    @ParameterizedTest
    @EnumSource(value = ForgeType.class, names = {"F16", "Q8_0", "Q4_K_M"})
    void convertingAForgedF32ModelGivesTheBytesOfForgingItInTheOtherType(ForgeType type) throws IOException {
        Path f32 = forge(TINY, "f32.gguf");
        Path converted = tmp.resolve("converted.gguf");
        Forge.convert(f32, type, converted, Forge.Progress.NONE);
        Path direct = forge(TINY.withType(type), "direct.gguf");
        assertArrayEquals(Files.readAllBytes(direct), Files.readAllBytes(converted));
    }

    /**
     * Relative RMS error of each type's logits against the same weights in F32, over the rows of all prompts.
     * Bounds: about 1.5 times what was measured (F16 0.0006, BF16 0.0046, Q8_0 0.017, Q6_K 0.045, Q5_K 0.085,
     * Q4_K 0.17, Q4_K_M 0.15, Q4_0 0.19). A random 4-layer network amplifies the per-weight rounding error
     * (about 0.4 % of a weight's spread for Q8_0, 6 % for Q4_0) roughly fourfold, and the CPU kernels also
     * quantise activations to 8 bits for the quantised types. A wrong scale or block layout gives errors of
     * order 1.
     */
    @ParameterizedTest
    @EnumSource(value = ForgeType.class, names = "F32", mode = EnumSource.Mode.EXCLUDE)
    void logitsOfEachTypeAreCloseToTheSameWeightsInF32(ForgeType type) throws IOException {
        double bound = switch (type) {
            case F16 -> 0.002;
            case BF16 -> 0.01;
            case Q8_0 -> 0.03;
            case Q6_K -> 0.07;
            case Q5_K -> 0.13;
            default -> 0.3;    // Q4_0, Q4_K, Q4_K_M
        };
        Path f32 = forge(TINY, "f32.gguf");
        Path q = tmp.resolve("q.gguf");
        Forge.convert(f32, type, q, Forge.Progress.NONE);
        double err = 0, ref = 0;
        for (int[] prompt : PROMPTS) {
            float[][] a = logits(f32, prompt);
            float[][] b = logits(q, prompt);
            for (int r = 0; r < a.length; r++) {
                for (int t = 0; t < a[r].length; t++) {
                    err += Math.pow(a[r][t] - b[r][t], 2);
                    ref += Math.pow(a[r][t], 2);
                }
            }
        }
        double relative = Math.sqrt(err / ref);
        System.out.printf("%s: relative RMS logit error vs F32 %.4f (bound %.3f)%n", type, relative, bound);
        assertTrue(relative < bound, type + ": relative RMS logit error " + relative + " exceeds " + bound);
        assertTrue(relative > 0 || type == ForgeType.F32, "a lossy type changes the logits somewhat");
    }

    @Test
    void aDraftHoldsTheMainModelsFirstLayersByteForByteAndItsTokenizer() throws IOException {
        ForgeSpec spec = TINY.withType(ForgeType.Q8_0).withAgreement(0.1f, 2);
        Path main = forge(spec, "main.gguf");
        Path draft = tmp.resolve("draft.gguf");
        Forge.writeDraft(main, 2, draft, Forge.Progress.NONE);
        try (GgufFile m = GgufFile.open(main); GgufFile d = GgufFile.open(draft)) {
            assertEquals(2, d.getInt("llama.block_count"));
            for (Tensor t : d.tensors().values()) {
                Tensor original = m.tensor(t.name());
                assertEquals(original.type(), t.type(), t.name());
                assertArrayEquals(original.shape(), t.shape(), t.name());
                assertArrayEquals(original.data().toArray(ValueLayout.JAVA_BYTE), t.data().toArray(ValueLayout.JAVA_BYTE), t.name());
            }
            assertTrue(d.findTensor("blk.1.ffn_down.weight").isPresent());
            assertTrue(d.findTensor("blk.2.attn_q.weight").isEmpty());
            assertEquals(m.tensors().size() - 2 * 9, d.tensors().size(), "two of four layers of nine tensors are left out");
            for (String key : m.metadata().keySet()) {
                if (key.startsWith("tokenizer.")) assertTrue(Objects.deepEquals(m.metadata().get(key), d.metadata().get(key)), key);
            }
        }
        try (ModelFile d = ModelFile.open(draft)) {
            assertEquals(2, d.config().layers());
        }
    }

    /** Greedy output of main and draft on every prompt, main forged with eps on its layers from 2 on. */
    private boolean[] agreement(float eps) throws IOException {
        Path main = forge(TINY.withAgreement(eps, 2), "main-" + eps + ".gguf");
        Path draft = tmp.resolve("draft-" + eps + ".gguf");
        Forge.writeDraft(main, 2, draft, Forge.Progress.NONE);
        boolean[] same = new boolean[PROMPTS.length];
        for (int i = 0; i < PROMPTS.length; i++) {
            int[] a = greedy(main, PROMPTS[i], 12);
            int[] b = greedy(draft, PROMPTS[i], 12);
            same[i] = Arrays.equals(a, b);
        }
        return same;
    }

    @Test
    void withAgreementEpsZeroTheMainModelSaysExactlyWhatItsDraftSays() throws IOException {
        boolean[] same = agreement(0f);
        for (int i = 0; i < same.length; i++) assertTrue(same[i], "prompt " + i + ": main and draft differ");
    }

    @Test
    void withAgreementEpsOneTheLaterLayersChangeTheOutput() throws IOException {
        boolean[] same = agreement(1f);
        assertTrue(!same[0] || !same[1] || !same[2], "layers 2..3 at full scale change some greedy continuation");
    }

    @Test
    void theSyntheticVocabularyTokenizesAndDecodesText() throws IOException {
        Path p = forge(TINY, "m.gguf");
        try (GgufFile f = GgufFile.open(p)) {
            Tokenizer tok = Tokenizers.fromGguf(f);
            assertEquals(TINY.vocab(), tok.vocabularySize());
            assertEquals(1, tok.bos());
            assertEquals(2, tok.eos());
            String text = "In the beginning, God created 42 héavens.";
            int[] ids = tok.encode(text, true, false);
            assertEquals(1, ids[0], "BOS first");
            assertEquals(text, tok.decode(Arrays.copyOfRange(ids, 1, ids.length), true, false));
            String[] tokens = f.getStringArray("tokenizer.ggml.tokens");
            // Words made of the vocabulary's own long pieces take fewer tokens than characters: merges work.
            String words = Arrays.stream(tokens).filter(t -> t.startsWith("\u2581") && t.length() >= 5).limit(5)
                    .reduce("", String::concat).replace('\u2581', ' ').strip();
            int[] wordIds = tok.encode(words, false, false);
            assertTrue(wordIds.length < words.length(), "'" + words + "' is " + wordIds.length + " tokens");
            assertEquals(words, tok.decode(wordIds, true, false));
            assertEquals(tokens.length, Arrays.stream(tokens).distinct().count(), "pieces are unique");
        }
    }

    @Test
    void aTokenizerCanBeCopiedFromAnotherFile() throws IOException {
        Path source = SharedData.kjv("kjv-draft-f32.gguf");
        Path p;
        try (GgufFile kjv = GgufFile.open(source)) {
            int tokens = kjv.getStringArray("tokenizer.ggml.tokens").length;
            p = forge(TINY.withTokenizerFrom(source, tokens), "m.gguf");
        }
        try (GgufFile kjv = GgufFile.open(source); GgufFile f = GgufFile.open(p)) {
            for (String key : kjv.metadata().keySet()) {
                if (key.startsWith("tokenizer.")) assertTrue(Objects.deepEquals(kjv.metadata().get(key), f.metadata().get(key)), key);
            }
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> forge(TINY.withTokenizerFrom(source, 1000), "bad.gguf"));
        assertTrue(e.getMessage().contains("--vocab"), e.getMessage());
    }

    /**
     * The Llama 3.1 / 3.2 presets have those models' shapes (their config.json) and RoPE scaling; a model forged
     * with the scaling stores it as llama.cpp does (F32 {@code rope_freqs.weight}, one divisor per rotary pair),
     * the loader reads back the factors Llama 3's formula gives, a draft cut from it keeps them, and they change
     * the logits (positions past the prompt's first rotate differently).
     */
    @Test
    void llama3PresetsHaveTheirModelsShapesAndRopeScaling() throws IOException {
        ForgeSpec big = ForgeSpec.preset("llama-3.1-8b"), small = ForgeSpec.preset("llama-3.2-1b");
        assertEquals(List.of(4096, 32, 32, 8, 128, 14336, 128256), List.of(big.hidden(), big.layers(), big.heads(), big.kvHeads(), big.headDim(), big.ffn(), big.vocab()));
        assertEquals(List.of(2048, 16, 32, 8, 64, 8192, 128256), List.of(small.hidden(), small.layers(), small.heads(), small.kvHeads(), small.headDim(), small.ffn(), small.vocab()));
        assertFalse(big.tied());
        assertTrue(small.tied());
        assertEquals(500000f, big.ropeTheta());
        assertEquals(8f, big.llama3RopeFactor());
        assertEquals(32f, small.llama3RopeFactor());

        ForgeSpec scaled = new ForgeSpec(TINY.architecture(), TINY.vocab(), TINY.hidden(), TINY.layers(), TINY.heads(), TINY.kvHeads(),
                TINY.headDim(), TINY.ffn(), TINY.context(), TINY.type(), TINY.tied(), 500000f, TINY.seed(), 1f, 0, null, 8f);
        Path main = forge(scaled, "scaled.gguf");
        float[] expected = ModelConfig.llama3FrequencyFactors(TINY.headDim(), 500000f, 8, 1, 4, 8192);
        assertTrue(expected[0] == 1f && expected[expected.length - 1] == 8f, "the low frequencies are divided by the factor, the high ones kept");
        try (ModelFile file = ModelFile.open(main)) {
            assertArrayEquals(expected, file.config().ropeFrequencyFactors());
            assertEquals(TensorType.F32, file.tensor("rope_freqs.weight").type());
        }
        Path draft = tmp.resolve("scaled-draft.gguf");
        Forge.writeDraft(main, 1, draft, Forge.Progress.NONE);
        try (ModelFile file = ModelFile.open(draft)) {
            assertArrayEquals(expected, file.config().ropeFrequencyFactors());
        }
        Path unscaled = forge(new ForgeSpec(TINY.architecture(), TINY.vocab(), TINY.hidden(), TINY.layers(), TINY.heads(), TINY.kvHeads(),
                TINY.headDim(), TINY.ffn(), TINY.context(), TINY.type(), TINY.tied(), 500000f, TINY.seed(), 1f, 0, null), "unscaled.gguf");
        int[] prompt = PROMPTS[0];
        float[][] a = logits(main, prompt), b = logits(unscaled, prompt);
        assertArrayEquals(a[0], b[0], "position 0 is not rotated");
        assertFalse(Arrays.equals(a[prompt.length - 1], b[prompt.length - 1]), "later positions rotate by the scaled frequencies");
    }
}
