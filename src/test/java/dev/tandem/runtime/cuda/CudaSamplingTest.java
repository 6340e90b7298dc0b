package dev.tandem.runtime.cuda;

import dev.tandem.decode.Distribution;
import dev.tandem.decode.Sampler;
import dev.tandem.decode.SamplerSettings;
import dev.tandem.testing.ChiSquare;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Sampling on the device: {@code sample_probs} gives the distribution of the CPU sampler chain
 * ({@link Sampler}, no repetition penalty) on random logits, {@code accept_sampled} decides exactly as a Java
 * transcription of its arithmetic, and its output follows the main model's distribution (chi-square), which a
 * draft-only sampler does not.
 */
class CudaSamplingTest extends KernelTestSupport {
    static final double FALSE_FAILURE_RATE = 1e-5;

    @Test
    void sampleProbsIsTheCpuSamplerChain() {
        Random random = new Random(5);
        List<String> failures = new ArrayList<>();
        int cases = 0;
        for (int v : new int[] {7, 300, 1000, 3000}) {
            // Top-p after a top-k of at most 1024 walks sorted candidates; after a larger one, or alone, it bisects.
            for (SamplerSettings s : List.of(
                    settings(0.8f, 0, 1f, 0f), settings(1.3f, 5, 1f, 0f), settings(0.7f, 0, 0.9f, 0f),
                    settings(1f, 0, 1f, 0.05f), settings(0.9f, 40, 0.95f, 0.02f), settings(0.5f, 1, 1f, 0f),
                    settings(1.1f, 1024, 0.99f, 0f), settings(1.2f, 1500, 0.98f, 0f))) {
                int rows = 3;
                float[] logits = new float[rows * v];
                for (int i = 0; i < logits.length; i++) logits[i] = (float) random.nextGaussian() * 3f;
                if (v == 300) logits[17] = logits[3];   // a tie: top-k keeps the lower id first
                MemorySegment out = floats(rows * v);
                kernels.launch(Kernel.SAMPLE_PROBS, LaunchGeometry.sampleProbs(rows), floats(logits), out, v,
                        1f / s.temperature(), s.topK(), s.topP(), s.minP(), MemorySegment.NULL);
                float[] device = read(out, rows * v);
                Sampler sampler = new Sampler(s, v);
                Distribution p = new Distribution(v);
                float[] row = new float[v];
                for (int r = 0; r < rows; r++) {
                    System.arraycopy(logits, r * v, row, 0, v);
                    sampler.fill(row, v, new int[0], 0, p);
                    cases++;
                    for (int t = 0; t < v; t++) {
                        float d = device[r * v + t], c = p.p(t);
                        if ((d == 0) != (c == 0) || Math.abs(d - c) > 1e-6f + 1e-5f * c) {
                            failures.add("V " + v + " " + s + " row " + r + " id " + t + ": device " + d + ", cpu " + c);
                            break;
                        }
                    }
                }
            }
        }
        assertEquals(List.of(), failures, failures.size() + " of " + cases + " rows differ");
    }

    @Test
    void acceptSampledDecidesAsItsJavaTranscription() {
        Random random = new Random(9);
        int v = 50, k = 3, blocks = 64;
        float[] p = new float[blocks * (k + 1) * v], q = new float[blocks * k * v];
        int[] draft = new int[blocks * k], meta = new int[blocks * 3];
        for (int b = 0; b < blocks; b++) {
            for (int r = 0; r <= k; r++) randomDistribution(random, p, (b * (k + 1) + r) * v, v, b % 4 == 0);
            for (int r = 0; r < k; r++) {
                // Some drafts equal to p (nothing left of p - q), the rest differ.
                if (b % 8 == 1) System.arraycopy(p, (b * (k + 1) + r) * v, q, (b * k + r) * v, v);
                else randomDistribution(random, q, (b * k + r) * v, v, false);
                draft[b * k + r] = random.nextInt(v);
            }
            long seed = random.nextLong();
            meta[3 * b] = (int) seed;
            meta[3 * b + 1] = (int) (seed >>> 32);
            meta[3 * b + 2] = random.nextInt(1000);
        }
        MemorySegment verdict = ints(new int[2 * blocks]);
        kernels.launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(blocks), floats(p), floats(q), ints(draft), ints(meta), verdict, k, v);
        int[] device = readInts(verdict, 2 * blocks);
        int[] expected = new int[2 * blocks];
        int accepts = 0;
        for (int b = 0; b < blocks; b++) {
            long seed = (meta[3 * b] & 0xffffffffL) | ((long) meta[3 * b + 1] << 32);
            int[] r = acceptReference(p, (b * (k + 1)) * v, q, (b * k) * v, draft, b * k, k, v, seed, meta[3 * b + 2]);
            expected[2 * b] = r[0];
            expected[2 * b + 1] = r[1];
            accepts += r[0];
        }
        assertArrayEquals(expected, device);
        assertTrue(accepts > 0, "some draft tokens should be accepted");
    }

    /**
     * The batched kernel: sequences with their own k, seed and position, their p rows scattered among rows no one
     * verifies (a pass's plain rows), their q rows in another order and their draft tokens anywhere in the pass's
     * token ids; each sequence's verdict is the Java transcription's on its own rows, as if verified alone.
     */
    @Test
    void acceptSampledBatchDecidesEachSequenceOnItsOwnRows() {
        Random random = new Random(17);
        int v = 50, sequences = 24;
        int[] ks = new int[sequences], pRows = new int[sequences], qRows = new int[sequences], draftAt = new int[sequences];
        int pTotal = 0, qTotal = 0, tokensTotal = 0;
        for (int b = 0; b < sequences; b++) {
            ks[b] = 1 + random.nextInt(5);
            pTotal += random.nextInt(3);            // plain rows before this sequence's
            pRows[b] = pTotal;
            pTotal += ks[b] + 1;
            tokensTotal += random.nextInt(3);
            draftAt[b] = tokensTotal;
            tokensTotal += ks[b];
        }
        // q rows in reverse sequence order, with a gap between: nothing ties them to the p rows' order.
        for (int b = sequences - 1; b >= 0; b--) {
            qRows[b] = qTotal;
            qTotal += ks[b] + 1;
        }
        float[] p = new float[pTotal * v], q = new float[qTotal * v];
        for (int r = 0; r < pTotal; r++) randomDistribution(random, p, r * v, v, r % 4 == 0);
        int[] tokens = new int[tokensTotal], meta = new int[8 * sequences];
        for (int b = 0; b < sequences; b++) {
            for (int r = 0; r < ks[b]; r++) {
                // Some drafts equal to p (nothing left of p - q), the rest differ.
                if (b % 5 == 1) System.arraycopy(p, (pRows[b] + r) * v, q, (qRows[b] + r) * v, v);
                else randomDistribution(random, q, (qRows[b] + r) * v, v, false);
                tokens[draftAt[b] + r] = random.nextInt(v);
            }
            long seed = random.nextLong();
            int[] m = {(int) seed, (int) (seed >>> 32), random.nextInt(1000), ks[b], pRows[b], qRows[b], draftAt[b], 0};
            System.arraycopy(m, 0, meta, 8 * b, 8);
        }
        MemorySegment verdict = ints(new int[2 * sequences]);
        kernels.launch(Kernel.ACCEPT_SAMPLED_BATCH, LaunchGeometry.acceptSampled(sequences), floats(p), floats(q), ints(tokens), ints(meta), verdict, v);
        int[] device = readInts(verdict, 2 * sequences);
        int[] expected = new int[2 * sequences];
        int accepts = 0, rejections = 0;
        for (int b = 0; b < sequences; b++) {
            long seed = (meta[8 * b] & 0xffffffffL) | ((long) meta[8 * b + 1] << 32);
            int[] r = acceptReference(p, pRows[b] * v, q, qRows[b] * v, tokens, draftAt[b], ks[b], v, seed, meta[8 * b + 2]);
            expected[2 * b] = r[0];
            expected[2 * b + 1] = r[1];
            accepts += r[0];
            rejections += r[0] < ks[b] ? 1 : 0;
        }
        assertArrayEquals(expected, device);
        assertTrue(accepts > 0 && rejections > 0, "some draft tokens should be accepted and some rejected: " + accepts + ", " + rejections);
    }

    /**
     * Lossless: with d1 ~ q0 and d2 ~ Q1[d1], the first emitted token follows p0, and when d1 was accepted the
     * second follows P1[d1], at a false-failure rate of 1e-5 (seeded, so deterministic). The draft's own first
     * token fails the same test.
     */
    @Test
    void acceptanceOnTheDeviceFollowsTheMainDistribution() {
        int v = 6, k = 2, trials = 6000;
        Random random = new Random(21);
        float[] p0 = new float[v], q0 = new float[v];
        float[][] p1 = new float[v][v], q1 = new float[v][v], p2 = new float[v * v][v];
        randomDistribution(random, p0, 0, v, false);
        randomDistribution(random, q0, 0, v, false);
        for (int a = 0; a < v; a++) {
            randomDistribution(random, p1[a], 0, v, false);
            randomDistribution(random, q1[a], 0, v, false);
            for (int b = 0; b < v; b++) randomDistribution(random, p2[a * v + b], 0, v, false);
        }
        float[] p = new float[trials * (k + 1) * v], q = new float[trials * k * v];
        int[] draft = new int[trials * k], meta = new int[trials * 3];
        for (int t = 0; t < trials; t++) {
            int d1 = draw(random, q0), d2 = draw(random, q1[d1]);
            draft[t * k] = d1;
            draft[t * k + 1] = d2;
            System.arraycopy(p0, 0, p, t * (k + 1) * v, v);
            System.arraycopy(p1[d1], 0, p, (t * (k + 1) + 1) * v, v);
            System.arraycopy(p2[d1 * v + d2], 0, p, (t * (k + 1) + 2) * v, v);
            System.arraycopy(q0, 0, q, t * k * v, v);
            System.arraycopy(q1[d1], 0, q, (t * k + 1) * v, v);
            meta[3 * t] = t;            // seed t
            meta[3 * t + 2] = 40;       // position of d1
        }
        MemorySegment verdict = ints(new int[2 * trials]);
        kernels.launch(Kernel.ACCEPT_SAMPLED, LaunchGeometry.acceptSampled(trials), floats(p), floats(q), ints(draft), ints(meta), verdict, k, v);
        int[] out = readInts(verdict, 2 * trials);
        long[] first = new long[v], draftFirst = new long[v], pairs = new long[v * v];
        double[] pairExpected = new double[v * v];
        long withSecond = 0;
        for (int t = 0; t < trials; t++) {
            int a = out[2 * t], next = out[2 * t + 1];
            int e1 = a >= 1 ? draft[t * k] : next;
            first[e1]++;
            draftFirst[draft[t * k]]++;
            if (a >= 1) {
                int e2 = a >= 2 ? draft[t * k + 1] : next;
                pairs[e1 * v + e2]++;
                for (int y = 0; y < v; y++) pairExpected[e1 * v + y] += p1[e1][y];
                withSecond++;
            }
        }
        double[] expectedFirst = new double[v];
        for (int i = 0; i < v; i++) expectedFirst[i] = p0[i];
        for (int i = 0; i < v * v; i++) pairExpected[i] /= withSecond;
        ChiSquare.Fit a = ChiSquare.statistic(first, expectedFirst, trials), b = ChiSquare.statistic(pairs, pairExpected, withSecond),
                c = ChiSquare.statistic(draftFirst, expectedFirst, trials);
        double aCritical = a.critical(FALSE_FAILURE_RATE), bCritical = b.critical(FALSE_FAILURE_RATE), cCritical = c.critical(FALSE_FAILURE_RATE);
        System.out.printf("device acceptance: first token chi-square %.1f (critical %.1f), second given accepted %.1f (critical %.1f); draft alone %.1f%n",
                a.statistic(), aCritical, b.statistic(), bCritical, c.statistic());
        assertTrue(a.statistic() <= aCritical, "first emitted token does not follow p0: " + a.statistic() + " > " + aCritical);
        assertTrue(b.statistic() <= bCritical, "second emitted token does not follow P1: " + b.statistic() + " > " + bCritical);
        assertTrue(c.statistic() > cCritical, "negative control: the draft's own tokens should fail the test");
    }

    static SamplerSettings settings(float temperature, int topK, float topP, float minP) {
        return new SamplerSettings(temperature, topK, topP, minP, 1f, 0, 0);
    }

    /** A random distribution into dst[at, at+v); sparse ones keep a few ids only. */
    static void randomDistribution(Random random, float[] dst, int at, int v, boolean sparse) {
        float sum = 0;
        for (int i = 0; i < v; i++) {
            float w = sparse && random.nextInt(4) != 0 ? 0f : (float) Math.exp(random.nextGaussian());
            dst[at + i] = w;
            sum += w;
        }
        if (sum == 0) {
            dst[at] = 1;
            sum = 1;
        }
        for (int i = 0; i < v; i++) dst[at + i] /= sum;
    }

    static int draw(Random random, float[] dist) {
        double u = random.nextDouble(), c = 0;
        for (int i = 0; i < dist.length; i++) {
            c += dist[i];
            if (u < c) return i;
        }
        return dist.length - 1;
    }

    /** accept_sampled's arithmetic in Java, float for float: {accepted, token}. */
    static int[] acceptReference(float[] p, int pAt, float[] q, int qAt, int[] draft, int dAt, int k, int v, long seed, int position) {
        int a = 0;
        while (a < k && CounterRandom.uniform(seed, position + a, 0) * q[qAt + a * v + draft[dAt + a]] < p[pAt + a * v + draft[dAt + a]]) a++;
        int threads = 256, chunk = (v + threads - 1) / threads;
        for (int attempt = 0; attempt < 2; attempt++) {
            boolean residual = a < k && attempt == 0;
            float[] partial = new float[threads], mine = new float[threads];
            for (int t = 0; t < threads; t++) {
                int begin = Math.min(v, t * chunk), end = Math.min(v, begin + chunk);
                for (int i = begin; i < end; i++) mine[t] += weight(p, pAt + a * v + i, q, qAt + a * v + i, residual);
            }
            float run = 0;
            for (int t = 0; t < threads; t++) {
                partial[t] = run;
                run += mine[t];
            }
            if (!(run > 0) && residual) continue;
            float target = CounterRandom.uniform(seed, position + a, 1) * run;
            int last = -1;
            for (int t = 0; t < threads; t++) {
                int begin = Math.min(v, t * chunk), end = Math.min(v, begin + chunk);
                int lastHere = -1;
                for (int i = begin; i < end; i++) if (weight(p, pAt + a * v + i, q, qAt + a * v + i, residual) > 0) lastHere = i;
                last = Math.max(last, lastHere);
                if (partial[t] <= target && target < partial[t] + mine[t]) {
                    float cumulative = partial[t];
                    int pick = lastHere;
                    for (int i = begin; i < end; i++) {
                        cumulative += weight(p, pAt + a * v + i, q, qAt + a * v + i, residual);
                        if (target < cumulative) {
                            pick = i;
                            break;
                        }
                    }
                    return new int[] {a, pick};
                }
            }
            return new int[] {a, last};
        }
        throw new AssertionError("unreachable");
    }

    private static float weight(float[] p, int pi, float[] q, int qi, boolean residual) {
        return residual ? Math.max(p[pi] - q[qi], 0f) : p[pi];
    }
}
