package dev.tandem.runtime.cpu;

import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.model.RopeLayout;
import dev.tandem.model.Tensor;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.ForwardResult;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.KvType;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.NonFiniteOutputException;
import dev.tandem.runtime.PagedKvCache;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

import java.util.function.IntConsumer;

/**
 * A Llama/Qwen2 transformer on the CPU. One {@link #forward} runs all rows of a batch through each layer
 * together, so every weight matrix is streamed from memory once per pass (per chunk of {@code maxBatchRows}).
 *
 * <p>Bitwise contract: a row's values never depend on the other rows of its pass. Matrix products reduce each
 * output in an order fixed by the row length ({@link CpuMatrix}); norms, RoPE and attention work row by row
 * with sequential, position-ordered reductions.
 *
 * <p>Scratch layout: row {@code r} of a {@code width}-wide buffer is {@code buf[r*width .. r*width+width)}.
 * All scratch is allocated at load time; a pass allocates nothing.
 */
final class CpuModel implements LoadedModel {
    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** A layer's weights; qkv multiplies one activation into q, k and v, gateUp into silu(gate) * up. */
    private record Layer(float[] attnNorm, MatmulGroup qkv, CpuMatrix wo,
                         float[] bq, float[] bk, float[] bv,
                         float[] ffnNorm, GatedMatmul gateUp, CpuMatrix down) {}

    private final ModelConfig c;
    private final KvType kvType;
    private final WorkerPool pool;
    private final int maxRows;
    private final CpuMatrix embedding, output;
    private final float[] outputNorm;
    private final Layer[] layers;
    private final float attentionScale;
    private final float ropeThetaScale;
    private final float[] ropeFactors;

    // Per-pass scratch (see class comment for the layout).
    private final float[] x, xb, q, k, v, att, proj, gate, up, ropeCos, ropeSin;
    private final Activations act;
    private final int[] rowSlot;        // K/V slot each row writes
    private int[][] rowTables = new int[0][];  // block table of each row's sequence
    private final ThreadLocal<AttentionScratch> attention;
    private float[] logits = new float[0];
    private final Result result = new Result();
    // The attention loop of the layer in progress (fields, so that handing it to the pool allocates nothing).
    private final IntConsumer attendTask = this::attend;
    private CpuKvCache attendKv;
    private Batch attendBatch;
    private int attendLayer, attendStart;

    CpuModel(ModelFile file, LoadOptions options) {
        this.c = file.config();
        this.kvType = options.kvType();
        this.pool = new WorkerPool(options.threads());
        this.maxRows = options.maxBatchRows();
        this.embedding = CpuMatrix.of(file.tensor("token_embd.weight"));
        this.output = c.tiedEmbeddings() ? embedding : CpuMatrix.of(file.tensor("output.weight"));
        this.outputNorm = vector(file.tensor("output_norm.weight"));
        this.attentionScale = 1.0f / (float) Math.sqrt(c.headDim());
        this.ropeThetaScale = (float) Math.pow(c.ropeTheta(), -2.0f / c.ropeDimensions());
        this.ropeFactors = c.ropeFrequencyFactors();
        int h = c.hiddenSize();
        x = new float[maxRows * h];
        xb = new float[maxRows * Math.max(h, c.qDim())];
        q = new float[maxRows * c.qDim()];
        k = new float[maxRows * c.kvDim()];
        v = new float[maxRows * c.kvDim()];
        att = new float[maxRows * c.qDim()];
        proj = new float[maxRows * h];
        gate = new float[maxRows * c.ffnSize()];
        up = new float[maxRows * c.ffnSize()];
        ropeCos = new float[maxRows * c.ropeDimensions() / 2];
        ropeSin = new float[maxRows * c.ropeDimensions() / 2];
        act = new Activations(maxRows, Math.max(Math.max(h, c.qDim()), c.ffnSize()));
        rowSlot = new int[maxRows];
        int context = c.contextLength();
        this.layers = new Layer[c.layers()];
        for (int l = 0; l < c.layers(); l++) {
            String p = "blk." + l + ".";
            CpuMatrix[] qkv = {matrix(file, p + "attn_q.weight"), matrix(file, p + "attn_k.weight"), matrix(file, p + "attn_v.weight")};
            layers[l] = new Layer(
                    vector(file.tensor(p + "attn_norm.weight")),
                    new MatmulGroup(qkv, new float[][] {q, k, v}),
                    matrix(file, p + "attn_output.weight"),
                    c.qkvBias() ? vector(file.tensor(p + "attn_q.bias")) : null,
                    c.qkvBias() ? vector(file.tensor(p + "attn_k.bias")) : null,
                    c.qkvBias() ? vector(file.tensor(p + "attn_v.bias")) : null,
                    vector(file.tensor(p + "ffn_norm.weight")),
                    new GatedMatmul(matrix(file, p + "ffn_gate.weight"), matrix(file, p + "ffn_up.weight"), gate, up),
                    matrix(file, p + "ffn_down.weight"));
        }
        attention = ThreadLocal.withInitial(() -> new AttentionScratch(new float[context], new int[context]));
    }

    private static CpuMatrix matrix(ModelFile file, String name) { return CpuMatrix.of(file.tensor(name)); }

    private static float[] vector(Tensor t) {
        float[] out = new float[Math.toIntExact(t.elements())];
        CpuMatrix.of(t.dimensions() == 1 ? new Tensor(t.name(), t.type(), new long[] {t.elements(), 1}, t.data()) : t).copyRow(0, out, 0);
        return out;
    }

    @Override public ModelConfig config() { return c; }

    @Override public long kvBytesPerPosition() { return c.kvBytesPerPosition(kvType.bytes()); }

    @Override
    public KvCache createKvCache(PagedKvCache tables) {
        return new CpuKvCache(tables, kvType, c.layers(), c.kvDim());
    }

    @Override
    public ForwardResult forward(Batch batch, KvCache kvCache) {
        if (!(kvCache instanceof CpuKvCache kv) || kv.kvDim != c.kvDim() || kv.keys16 == null && kv.keys.length != c.layers()
                || kv.keys != null && kv.keys.length != c.layers()) {
            throw new IllegalArgumentException("K/V cache was not made by this model");
        }
        int n = batch.size();
        int[] logitRows = batch.logitRows();
        int vocab = c.vocabularySize();
        if (logits.length < logitRows.length * vocab) logits = new float[logitRows.length * vocab];
        int nextLogit = 0;
        for (int start = 0; start < n; start += maxRows) {
            int rows = Math.min(maxRows, n - start);
            runChunk(batch, start, rows, kv);
            int first = nextLogit;
            while (nextLogit < logitRows.length && logitRows[nextLogit] < start + rows) nextLogit++;
            if (nextLogit > first) outputHead(logitRows, first, nextLogit, start);
        }
        attendKv = null;
        attendBatch = null;
        return result.of(logits, logitRows.length, vocab);
    }

    /** Runs batch rows {@code [start, start+rows)} through all layers; their final hidden states stay in {@link #x}. */
    private void runChunk(Batch batch, int start, int rows, CpuKvCache kv) {
        int h = c.hiddenSize(), kvDim = c.kvDim();
        PagedKvCache tables = kv.tables();
        if (rowTables.length < rows) rowTables = new int[maxRows][];
        for (int r = 0; r < rows; r++) {
            int token = batch.tokens()[start + r], pos = batch.positions()[start + r], seq = batch.sequences()[start + r];
            if (token < 0 || token >= c.vocabularySize()) {
                throw new IllegalArgumentException("token id " + token + " is outside the vocabulary (size " + c.vocabularySize() + ")");
            }
            if (pos >= c.contextLength()) {
                throw new IllegalArgumentException("position " + pos + " is beyond the context length " + c.contextLength());
            }
            rowSlot[r] = tables.block(seq, pos) * tables.blockSize() + pos % tables.blockSize();
            rowTables[r] = tables.blockTable(seq, rowTables[r]);
            embedding.copyRow(token, x, r * h);
            ropeAngles(pos, r);
        }
        for (int l = 0; l < layers.length; l++) {
            Layer L = layers[l];
            // Attention block: x += Wo · attention(rope(Wq·n(x)), rope(Wk·n(x)), Wv·n(x))
            for (int r = 0; r < rows; r++) rmsNorm(x, r * h, L.attnNorm, xb, r * h, h);
            act.load(xb, rows, h);
            L.qkv.multiply(act, pool);
            if (L.bq != null) {
                addBias(q, L.bq, rows);
                addBias(k, L.bk, rows);
                addBias(v, L.bv, rows);
            }
            for (int r = 0; r < rows; r++) {
                rope(q, r * c.qDim(), c.heads(), r);
                rope(k, r * kvDim, c.kvHeads(), r);
                kv.store(l, rowSlot[r], k, v, r * kvDim);
            }
            attendKv = kv;
            attendBatch = batch;
            attendLayer = l;
            attendStart = start;
            pool.forEach(rows * c.heads(), attendTask);
            act.load(att, rows, c.qDim());
            L.wo.multiply(act, proj, pool);
            for (int i = 0; i < rows * h; i++) x[i] += proj[i];
            // Feed-forward block: x += Wdown · (silu(Wgate·n(x)) * Wup·n(x))
            for (int r = 0; r < rows; r++) rmsNorm(x, r * h, L.ffnNorm, xb, r * h, h);
            act.load(xb, rows, h);
            L.gateUp.multiply(act, pool);
            act.load(gate, rows, c.ffnSize());
            L.down.multiply(act, proj, pool);
            boolean finite = true;
            for (int i = 0; i < rows * h; i++) {
                x[i] += proj[i];
                finite &= Float.isFinite(x[i]);
            }
            if (!finite) throw nonFinite("the output of layer " + l + " (blk." + l + ".*)");
        }
    }

    /**
     * NaN or infinity found where {@code where} says: checked
     * at each layer's end (a scan of the hidden state, small next to the layer's products) so that the message
     * names the first layer that produced it, not the sampler that would fail on it later.
     */
    private NonFiniteOutputException nonFinite(String where) {
        return new NonFiniteOutputException("model '" + c.name() + "' computed NaN or infinite values in " + where
                + ": its weights or hyperparameters hold non-finite values");
    }

    /** Logits for result rows {@code [from, to)}, whose batch rows lie in the chunk starting at {@code start}. */
    private void outputHead(int[] logitRows, int from, int to, int start) {
        int h = c.hiddenSize(), vocab = c.vocabularySize();
        int count = to - from;
        for (int i = 0; i < count; i++) rmsNorm(x, (logitRows[from + i] - start) * h, outputNorm, xb, i * h, h);
        act.load(xb, count, h);
        if (from == 0) {
            output.multiply(act, logits, pool);
        } else {
            // The head writes rows from 0; results of later chunks go through a scratch copy.
            float[] tmp = new float[count * vocab];
            output.multiply(act, tmp, pool);
            System.arraycopy(tmp, 0, logits, from * vocab, count * vocab);
        }
        for (int i = from * vocab, end = to * vocab; i < end; i++) {
            if (!Float.isFinite(logits[i])) throw nonFinite("the output logits (output_norm.weight, " + (c.tiedEmbeddings() ? "token_embd.weight" : "output.weight") + ")");
        }
    }

    private void addBias(float[] m, float[] bias, int rows) {
        int w = bias.length;
        for (int r = 0; r < rows; r++) for (int i = 0; i < w; i++) m[r * w + i] += bias[i];
    }

    /**
     * RMSNorm as the reference engine computes it: the mean square summed in double, the scale rounded to
     * float, then {@code x * scale * weight} in float.
     */
    private void rmsNorm(float[] in, int inOff, float[] weight, float[] out, int outOff, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            float xi = in[inOff + i];
            sum += xi * xi;
        }
        float scale = 1.0f / (float) Math.sqrt((float) (sum / n + c.rmsNormEps()));
        for (int i = 0; i < n; i++) out[outOff + i] = in[inOff + i] * scale * weight[i];
    }

    /**
     * cos/sin of each rotary pair's angle at {@code pos}, as the reference engine builds its cache: the base
     * angle is multiplied by theta^(-2/d) pair after pair in float, then divided by the pair's frequency factor.
     */
    private void ropeAngles(int pos, int r) {
        int pairs = c.ropeDimensions() / 2;
        float theta = pos;
        for (int i = 0; i < pairs; i++) {
            float angle = ropeFactors == null ? theta : theta / ropeFactors[i];
            ropeCos[r * pairs + i] = (float) Math.cos(angle);
            ropeSin[r * pairs + i] = (float) Math.sin(angle);
            theta *= ropeThetaScale;
        }
    }

    private void rope(float[] m, int off, int heads, int r) {
        int pairs = c.ropeDimensions() / 2, hd = c.headDim();
        boolean adjacent = c.ropeLayout() == RopeLayout.ADJACENT;
        for (int hh = 0; hh < heads; hh++) {
            int base = off + hh * hd;
            for (int i = 0; i < pairs; i++) {
                int a = adjacent ? base + 2 * i : base + i;
                int b = adjacent ? a + 1 : a + pairs;
                float cos = ropeCos[r * pairs + i], sin = ropeSin[r * pairs + i];
                float x0 = m[a], x1 = m[b];
                m[a] = x0 * cos - x1 * sin;
                m[b] = x0 * sin + x1 * cos;
            }
        }
    }

    /** Per-thread attention scratch: a score (then a weight) per position, and where each position's K/V row starts. */
    private record AttentionScratch(float[] scores, int[] slots) {}

    /**
     * Attention of chunk row {@code r}, query head {@code head}, over positions {@code 0..pos} of its sequence,
     * read in position order (softmax as the reference engine: max, exp in float summed in double, scale).
     */
    private void attend(int task) {
        int r = task / c.heads(), head = task % c.heads();
        CpuKvCache kv = attendKv;
        int layer = attendLayer;
        int hd = c.headDim(), kvDim = c.kvDim(), bs = kv.tables().blockSize();
        int pos = attendBatch.positions()[attendStart + r];
        int[] table = rowTables[r];
        int qOff = r * c.qDim() + head * hd;
        int kvOff = (head / c.groupSize()) * hd;
        AttentionScratch scratch = attention.get();
        float[] s = scratch.scores();
        int[] slots = scratch.slots();
        for (int t = 0; t <= pos; t++) slots[t] = (table[t / bs] * bs + t % bs) * kvDim + kvOff;
        float max = Float.NEGATIVE_INFINITY;
        for (int t = 0; t <= pos; t++) {
            float dot = kv.keys != null ? dot(q, qOff, kv.keys[layer], slots[t], hd)
                    : dot16(kv, q, qOff, kv.keys16[layer], slots[t], hd);
            s[t] = dot * attentionScale;
            if (s[t] > max) max = s[t];
        }
        double sum = 0;
        for (int t = 0; t <= pos; t++) {
            float e = (float) Math.exp(s[t] - max);
            s[t] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int t = 0; t <= pos; t++) s[t] *= inv;  // the weight p of position t
        int outOff = r * c.qDim() + head * hd;
        if (kv.values != null) {
            weightedSum(s, pos + 1, kv.values[layer], slots, att, outOff, hd);
        } else {
            java.util.Arrays.fill(att, outOff, outOff + hd, 0f);
            short[] vv = kv.values16[layer];
            for (int t = 0; t <= pos; t++) {
                float p = s[t];
                for (int i = 0; i < hd; i++) att[outOff + i] += p * kv.decode(vv[slots[t] + i]);
            }
        }
    }

    /**
     * y[yOff + i] = sum over positions t < n, in position order, of p[t] * v[at[t] + i], for i < width: each
     * term a rounded product added to a rounded sum that starts at 0. A column of L elements stays in a register
     * across the positions.
     */
    private static void weightedSum(float[] p, int n, float[] v, int[] at, float[] y, int yOff, int width) {
        int l = F.length(), i = 0;
        // Four column blocks per pass over the positions: four independent chains of adds instead of one.
        for (; i + 4 * l <= width; i += 4 * l) {
            FloatVector a0 = FloatVector.zero(F), a1 = a0, a2 = a0, a3 = a0;
            for (int t = 0; t < n; t++) {
                int base = at[t] + i;
                float pt = p[t];
                a0 = a0.add(FloatVector.fromArray(F, v, base).mul(pt));
                a1 = a1.add(FloatVector.fromArray(F, v, base + l).mul(pt));
                a2 = a2.add(FloatVector.fromArray(F, v, base + 2 * l).mul(pt));
                a3 = a3.add(FloatVector.fromArray(F, v, base + 3 * l).mul(pt));
            }
            a0.intoArray(y, yOff + i);
            a1.intoArray(y, yOff + i + l);
            a2.intoArray(y, yOff + i + 2 * l);
            a3.intoArray(y, yOff + i + 3 * l);
        }
        for (; i + l <= width; i += l) {
            FloatVector acc = FloatVector.zero(F);
            for (int t = 0; t < n; t++) acc = acc.add(FloatVector.fromArray(F, v, at[t] + i).mul(p[t]));
            acc.intoArray(y, yOff + i);
        }
        for (; i < width; i++) {
            float acc = 0;
            for (int t = 0; t < n; t++) acc += p[t] * v[at[t] + i];
            y[yOff + i] = acc;
        }
    }

    /** Lane l exchanged with lane l ^ w: one step of folding a vector in halves (null where w >= L). */
    private static final VectorShuffle<Float> FOLD_8 = fold(8), FOLD_4 = fold(4), FOLD_2 = fold(2), FOLD_1 = fold(1);

    private static VectorShuffle<Float> fold(int w) { return w < F.length() ? VectorShuffle.fromOp(F, l -> l ^ w) : null; }

    /**
     * Dot product in a fixed order: vector partial sums, the lanes folded in halves (lane l + lane l+w for
     * w = L/2, ..., 1), then the scalar tail. The fold is an order we fix ourselves: reduceLanes may add lanes
     * in any order (and does differ between the interpreter and compiled code), which would make results
     * depend on the JIT. Adding the exchanged vector adds the same pairs the scalar fold adds.
     */
    private static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        FloatVector acc = FloatVector.zero(F);
        int i = 0;
        for (int upper = F.loopBound(n); i < upper; i += F.length()) {
            acc = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc);
        }
        if (F.length() > 8) acc = acc.add(acc.rearrange(FOLD_8));
        if (F.length() > 4) acc = acc.add(acc.rearrange(FOLD_4));
        if (F.length() > 2) acc = acc.add(acc.rearrange(FOLD_2));
        acc = acc.add(acc.rearrange(FOLD_1));
        float sum = acc.lane(0);
        for (; i < n; i++) sum += a[aOff + i] * b[bOff + i];
        return sum;
    }

    private static float dot16(CpuKvCache kv, float[] a, int aOff, short[] b, int bOff, int n) {
        float sum = 0;
        for (int i = 0; i < n; i++) sum += a[aOff + i] * kv.decode(b[bOff + i]);
        return sum;
    }

    @Override
    public void close() {
        pool.close();
    }

    /** Logit rows in a buffer the model reuses; one instance per model, valid until the next forward. */
    private static final class Result implements ForwardResult {
        private float[] logits;
        private int rows, vocabularySize;

        Result of(float[] logits, int rows, int vocabularySize) {
            this.logits = logits;
            this.rows = rows;
            this.vocabularySize = vocabularySize;
            return this;
        }

        @Override public int rows() { return rows; }

        @Override public int vocabularySize() { return vocabularySize; }

        @Override public float logit(int row, int token) { return logits[row * vocabularySize + token]; }

        @Override public void copyLogits(int row, float[] dst) { System.arraycopy(logits, row * vocabularySize, dst, 0, vocabularySize); }

        @Override
        public int argmax(int row) {
            int base = row * vocabularySize, best = 0;
            float bestValue = logits[base];
            for (int t = 1; t < vocabularySize; t++) {
                if (logits[base + t] > bestValue) {
                    bestValue = logits[base + t];
                    best = t;
                }
            }
            return best;
        }

        @Override public float topProbability(int row) { return ForwardResult.topProbability(logits, row * vocabularySize, vocabularySize); }
    }
}
