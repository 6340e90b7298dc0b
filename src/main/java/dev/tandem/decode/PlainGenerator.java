package dev.tandem.decode;

import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

/** The main model alone: prefill the prompt in one pass, then one pass per token. The baseline speculation must match. */
public final class PlainGenerator implements Generator {
    static final int BLOCK_SIZE = 16;

    private final LoadedModel model;
    private final SamplerSettings settings;

    public PlainGenerator(LoadedModel model, SamplerSettings settings) {
        this.model = model;
        this.settings = settings;
    }

    @Override
    public GenerationResult generate(int[] prompt, GenerationLimits limits, TokenListener listener) {
        int vocabulary = model.config().vocabularySize();
        checkTokens(prompt, vocabulary);
        int maxTokens = TokenSink.clampToContext(prompt.length, limits.maxTokens(), model.config().contextLength());
        StatsRecorder stats = new StatsRecorder(prompt.length, 0);
        TokenSink out = new TokenSink(prompt, maxTokens, 0, limits, listener, stats);
        PagedKvCache tables = new PagedKvCache(BLOCK_SIZE, blocksFor(prompt.length + maxTokens));
        TokenChoice choice = new TokenChoice(settings, vocabulary);
        try (KvCache kv = model.createKvCache(tables)) {
            int seq = tables.createSequence();
            BatchArrays batches = new BatchArrays(seq, 1);
            tables.reserve(seq, prompt.length);
            ForwardResult r = model.forward(batches.of(prompt, 0, prompt.length, 0, false), kv);
            stats.prefillDone();
            while (true) {
                if (!out.emit(choice.choose(r, 0, out.context, out.length), false)) break;
                int pos = out.length - 1;
                tables.reserve(seq, pos + 1);
                r = model.forward(batches.of(out.context, pos, 1, pos, false), kv);
            }
            tables.release(seq);
        }
        return out.result(stats.finish());
    }

    static int blocksFor(int positions) {
        return (positions + BLOCK_SIZE - 1) / BLOCK_SIZE + 1;
    }

    static void checkTokens(int[] prompt, int vocabulary) {
        for (int i = 0; i < prompt.length; i++) {
            if (prompt[i] < 0 || prompt[i] >= vocabulary) {
                throw new IllegalArgumentException("prompt token " + i + " is id " + prompt[i] + ", outside the vocabulary of " + vocabulary);
            }
        }
    }
}
