package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CPU backend reproduces the reference engine's greedy continuations token for token, from the prompt
 * tokens the reference engine used (tokenisation has its own conformance test).
 */
class CpuGreedyReferenceTest {

    static int[] greedy(LoadedModel model, int[] prompt, int count) {
        PagedKvCache tables = new PagedKvCache(16, (prompt.length + count + 15) / 16 + 1);
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, prompt.length);
            int next = model.forward(Batch.of(seq, 0, prompt, false), kv).argmax(0);
            int[] out = new int[count];
            for (int i = 0; i < count; i++) {
                out[i] = next;
                int pos = prompt.length + i;
                tables.reserve(seq, pos + 1);
                next = model.forward(Batch.of(seq, pos, new int[] {next}, false), kv).argmax(0);
            }
            return out;
        }
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "models/kjv/kjv-main-f32.gguf, kjv-main-f32.jsonl",
            "models/kjv/main-hf, kjv-main-f32.jsonl",
            "models/kjv/kjv-draft-f32.gguf, kjv-draft-f32.jsonl",
            "models/kjv/draft-hf, kjv-draft-f32.jsonl",
            "models/variants/kjv-qwen2-f32.gguf, kjv-qwen2-f32.jsonl",
            "models/variants/kjv-qwen2-hf, kjv-qwen2-f32.jsonl",
            "models/variants/kjv-llama31rope-f32.gguf, kjv-llama31rope-f32.jsonl",
            "models/variants/kjv-llama31rope-hf, kjv-llama31rope-f32.jsonl",
    })
    void everyTokenMatchesTheReference(String modelPath, String referenceFile) {
        List<Generation> refs = ReferenceRecords.generations(referenceFile);
        Path path = SharedData.root().resolve(modelPath);
        try (ModelFile file = ModelFile.open(path);
             LoadedModel model = new CpuBackend().load(file, LoadOptions.defaults().withThreads(2))) {
            int exact = 0;
            StringBuilder report = new StringBuilder();
            for (Generation g : refs) {
                int[] got = greedy(model, g.promptTokens(), g.tokens().length);
                int match = ReferenceRecords.matchingPrefix(got, g.tokens());
                if (match == g.tokens().length) exact++;
                else report.append(String.format("  '%s': first %d of %d match%n", g.prompt(), match, g.tokens().length));
            }
            System.out.printf("%s: %d/%d sequences identical%n%s", modelPath, exact, refs.size(), report);
            assertEquals(refs.size(), exact, modelPath + " differs from the reference:\n" + report);
        }
    }

    /**
     * Q8_0: the reference engine quantises activations too but uses other kernels for prompt batches, so
     * tokens may part where logits nearly tie (its own Q8_0 output parts from its F32 output on 3 of 32
     * prompts). Required: the first 32 tokens match on at least 29 of 32 prompts.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({
            "models/kjv/kjv-main-q8_0.gguf, kjv-main-q8_0.jsonl",
            "models/kjv/kjv-draft-q8_0.gguf, kjv-draft-q8_0.jsonl",
    })
    void quantisedModelsMatchTheFirst32TokensOnAtLeast29Prompts(String modelPath, String referenceFile) {
        List<Generation> refs = ReferenceRecords.generations(referenceFile);
        try (ModelFile file = ModelFile.open(SharedData.root().resolve(modelPath));
             LoadedModel model = new CpuBackend().load(file, LoadOptions.defaults().withThreads(Integer.getInteger("t", 2)))) {
            int first32 = 0, all = 0;
            StringBuilder lengths = new StringBuilder();
            for (Generation g : refs) {
                int match = ReferenceRecords.matchingPrefix(greedy(model, g.promptTokens(), g.tokens().length), g.tokens());
                if (match >= 32) first32++;
                if (match == g.tokens().length) all++;
                lengths.append(match).append(' ');
            }
            System.out.printf("%s: first 32 tokens match on %d/%d prompts, all 64 on %d; matching lengths: %s%n",
                    modelPath, first32, refs.size(), all, lengths.toString().trim());
            assertTrue(first32 >= 29, modelPath + ": only " + first32 + " of " + refs.size() + " prompts match 32 tokens: " + lengths);
        }
    }
}
