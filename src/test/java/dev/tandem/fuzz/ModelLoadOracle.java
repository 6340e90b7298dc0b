package dev.tandem.fuzz;

import dev.tandem.decode.Distribution;
import dev.tandem.decode.Sampler;
import dev.tandem.decode.SamplerSettings;
import dev.tandem.model.ModelFile;
import dev.tandem.model.ModelFormatException;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.NonFiniteOutputException;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.TokenizerException;
import dev.tandem.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * What a model file, however mangled, may do to Tandem: be refused with a named error (a
 * {@link ModelFormatException} or {@link TokenizerException} whose message names the file, or a
 * {@link NonFiniteOutputException} when it loads but computes NaN), or load and generate: tokenize a prompt,
 * run it, and choose a few tokens greedily and by min-p sampling, then decode them. Any other exception or
 * {@code Error} escapes {@link #run} and is the fuzzer's finding.
 */
final class ModelLoadOracle {
    enum Outcome { REFUSED, GENERATED }

    private ModelLoadOracle() {}

    static Outcome run(Path model) {
        try (ModelFile file = ModelFile.open(model)) {
            Tokenizer tokenizer = Tokenizers.forModel(file);
            generate(file, tokenizer);
            return Outcome.GENERATED;
        } catch (ModelFormatException e) {
            requireNamed(e, e.file() != null && e.getMessage().contains(e.file().toString()));
            return Outcome.REFUSED;
        } catch (TokenizerException e) {
            requireNamed(e, e.getMessage().contains(model.toString()));
            return Outcome.REFUSED;
        } catch (NonFiniteOutputException e) {
            requireNamed(e, true);
            return Outcome.REFUSED;
        }
    }

    /** A refusal must say where: an unnamed one is a finding like any other exception. */
    private static void requireNamed(RuntimeException e, boolean named) {
        if (Boolean.getBoolean("tandem.fuzz.verbose")) System.out.println("refused: " + e.getMessage());
        if (!named || e.getMessage() == null || e.getMessage().isBlank()) {
            throw new AssertionError("a refusal that does not name the file: " + e.getMessage(), e);
        }
    }

    private static void generate(ModelFile file, Tokenizer tokenizer) {
        int context = file.config().contextLength();
        int[] prompt = tokenizer.encode("In the beginning God", true, false);
        if (prompt.length == 0) prompt = new int[] {0};
        prompt = Arrays.copyOf(prompt, Math.max(1, Math.min(prompt.length, context - 3)));
        int vocab = file.config().vocabularySize();
        try (LoadedModel model = new CpuBackend().load(file, new LoadOptions(1, KvType.F32, 8))) {
            PagedKvCache tables = new PagedKvCache(16, (context + 15) / 16);
            try (KvCache kv = model.createKvCache(tables)) {
                int seq = tables.createSequence();
                int steps = Math.min(3, context - prompt.length);
                tables.reserve(seq, prompt.length + Math.max(0, steps));
                ForwardResult r = model.forward(Batch.of(seq, 0, prompt, false), kv);
                float[] logits = new float[vocab];
                Sampler greedy = new Sampler(SamplerSettings.greedy(), vocab);
                Sampler minP = new Sampler(SamplerSettings.sampling(0.8f, 7).withMinP(0.05f), vocab);
                Distribution d = new Distribution(vocab);
                SplittableRandom random = new SplittableRandom(7);
                int[] tokens = new int[Math.max(0, steps)];
                for (int i = 0; i < steps; i++) {
                    r.copyLogits(r.rows() - 1, logits);
                    (i % 2 == 0 ? greedy : minP).fill(logits, vocab, tokens, i, d);
                    tokens[i] = i % 2 == 0 ? d.top() : d.sample(random);
                    if (i + 1 < steps) r = model.forward(Batch.of(seq, prompt.length + i, new int[] {tokens[i]}, false), kv);
                }
                tokenizer.decode(tokens, false, false);
            }
        }
    }
}
