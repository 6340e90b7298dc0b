package dev.tandem.engine;

import dev.tandem.model.Architecture;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.RopeLayout;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * A stand-in model with a tiny vocabulary whose logits are a fixed table indexed by the previous two tokens.
 * Its "K/V cache" stores each position's token in the slot the shared block tables give it, and a row reads
 * the two tokens before it back from there: a generator that forgets to run a token, or reads a rolled-back
 * one, gets different logits. With {@code asyncDelayMillis > 0}, {@link #forwardAsync} completes later on
 * another thread, as a GPU stream would.
 */
final class TableModel implements LoadedModel {
    final int vocabulary;
    /** logits[(a * vocabulary + b) * vocabulary + t]: logit of t after tokens a, b. */
    final float[] table;
    private final int asyncDelayMillis;
    private final ExecutorService executor;
    private final ModelConfig config;
    int passes;

    TableModel(int vocabulary, float[] table, int asyncDelayMillis) {
        this.vocabulary = vocabulary;
        this.table = table;
        this.asyncDelayMillis = asyncDelayMillis;
        this.executor = asyncDelayMillis > 0 ? Executors.newSingleThreadExecutor() : null;
        this.config = new ModelConfig(Architecture.LLAMA, "table", vocabulary, 4, 1, 1, 1, 4, 4, 4096, 1e-5f, 10000f, 4,
                RopeLayout.ADJACENT, null, false, false);
    }

    /** Random logits in [-spread, spread] from {@code seed}. */
    static float[] randomTable(int vocabulary, long seed, float spread) {
        Random r = new Random(seed);
        float[] t = new float[vocabulary * vocabulary * vocabulary];
        for (int i = 0; i < t.length; i++) t[i] = (r.nextFloat() * 2 - 1) * spread;
        return t;
    }

    /** {@code base} plus noise: a draft that mostly agrees. */
    static float[] perturbed(float[] base, long seed, float noise) {
        Random r = new Random(seed);
        float[] t = base.clone();
        for (int i = 0; i < t.length; i++) t[i] += (r.nextFloat() * 2 - 1) * noise;
        return t;
    }

    /** Logits of the token after a, b. */
    float logit(int a, int b, int t) { return table[(a * vocabulary + b) * vocabulary + t]; }

    @Override public ModelConfig config() { return config; }

    @Override public long kvBytesPerPosition() { return 4; }

    @Override
    public KvCache createKvCache(PagedKvCache tables) {
        return new TokenStore(tables);
    }

    @Override
    public ForwardResult forward(Batch batch, KvCache kv) {
        passes++;
        TokenStore store = (TokenStore) kv;
        PagedKvCache tables = store.tables;
        int n = batch.size();
        for (int i = 0; i < n; i++) store.tokens[slot(tables, batch.sequences()[i], batch.positions()[i])] = batch.tokens()[i];
        int[] rows = batch.logitRows();
        float[] logits = new float[rows.length * vocabulary];
        for (int r = 0; r < rows.length; r++) {
            int seq = batch.sequences()[rows[r]], pos = batch.positions()[rows[r]];
            int b = store.tokens[slot(tables, seq, pos)];
            int a = pos > 0 ? store.tokens[slot(tables, seq, pos - 1)] : 0;
            System.arraycopy(table, (a * vocabulary + b) * vocabulary, logits, r * vocabulary, vocabulary);
        }
        return new ForwardResult() {
            @Override public int rows() { return rows.length; }
            @Override public int vocabularySize() { return vocabulary; }
            @Override public float logit(int row, int token) { return logits[row * vocabulary + token]; }
            @Override public void copyLogits(int row, float[] dst) { System.arraycopy(logits, row * vocabulary, dst, 0, vocabulary); }
        };
    }

    @Override
    public CompletionStage<ForwardResult> forwardAsync(Batch batch, KvCache kv) {
        if (executor == null) return LoadedModel.super.forwardAsync(batch, kv);
        return CompletableFuture.supplyAsync(() -> {
            try {
                TimeUnit.MILLISECONDS.sleep(asyncDelayMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return forward(batch, kv);
        }, executor);
    }

    private static int slot(PagedKvCache tables, int seq, int pos) {
        return tables.block(seq, pos) * tables.blockSize() + pos % tables.blockSize();
    }

    @Override
    public void close() {
        if (executor != null) executor.shutdownNow();
    }

    private static final class TokenStore implements KvCache {
        final PagedKvCache tables;
        final int[] tokens;

        TokenStore(PagedKvCache tables) {
            this.tables = tables;
            this.tokens = new int[tables.totalBlocks() * tables.blockSize()];
            java.util.Arrays.fill(tokens, -1);
        }

        @Override public PagedKvCache tables() { return tables; }
        @Override public long bytes() { return tokens.length * 4L; }
        @Override public void close() {}
    }
}
