package dev.tandem.bench;

import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.runtime.cpu.WorkerPool;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.IntConsumer;

/**
 * How fast this machine streams a model's weights from memory, measured in the process that decodes: the limit
 * plain decoding works against, since a one-row pass reads every weight once and does little else.
 *
 * <p>{@link #measure} reads all bytes of the given tensors (views of the mapped file) once per pass with the
 * Vector API, in contiguous chunks of {@value #CHUNK_BYTES} bytes handed out over a {@link WorkerPool} of the
 * decoding's thread count. Untimed warm-up passes come first, at least {@value #WARM_UP_MILLIS} ms and 256 MiB
 * (they page the file in and let the JIT compile the loop); then {@code samples} timed samples of one or more
 * whole passes each (as many as make a sample last {@value #MIN_SAMPLE_MILLIS} ms, for models small enough to
 * sit in the caches). The result is the <b>best</b> sample (highest GB/s), as the machine's attainable bandwidth
 * rather than a typical one. A model that fits in the last-level cache reads at cache speed, as its decoding does.
 */
public final class ReadBandwidth {
    /** Bytes per task: large enough that every thread streams, small enough that the threads finish together. */
    public static final int CHUNK_BYTES = 256 << 10;
    static final int MIN_SAMPLE_MILLIS = 50;
    static final int WARM_UP_MILLIS = 100;
    static final long WARM_UP_BYTES = 256L << 20;
    public static final int DEFAULT_SAMPLES = 5;

    private static final VectorSpecies<Long> L = LongVector.SPECIES_PREFERRED;
    /** Where the sums of the bytes read go, so the JIT cannot drop the reads. */
    @SuppressWarnings("unused")
    private static volatile long sink;

    private ReadBandwidth() {}

    /**
     * One measurement.
     *
     * @param bytesPerPass   bytes read in one pass (all bytes of all tensors)
     * @param secondsPerPass the best sample's time per pass
     * @param gbPerSecond    {@code bytesPerPass / secondsPerPass / 1e9}
     * @param threads        threads that read
     * @param samples        timed samples the best was taken from
     */
    public record Result(long bytesPerPass, double secondsPerPass, double gbPerSecond, int threads, int samples) {}

    /** {@link #measure(Collection, int, int)} with {@value #DEFAULT_SAMPLES} samples. */
    public static Result measure(Collection<Tensor> tensors, int threads) {
        return measure(tensors, threads, DEFAULT_SAMPLES);
    }

    /** Streams all bytes of {@code tensors} on {@code threads} threads; see the class comment for the method. */
    public static Result measure(Collection<Tensor> tensors, int threads, int samples) {
        if (samples < 1) throw new IllegalArgumentException("samples must be at least 1, got " + samples);
        List<MemorySegment> chunks = new ArrayList<>();
        long bytes = 0;
        for (Tensor t : tensors) {
            long size = t.byteSize();
            MemorySegment data = t.data();
            for (long off = 0; off < size; off += CHUNK_BYTES) chunks.add(data.asSlice(off, Math.min(CHUNK_BYTES, size - off)));
            bytes += size;
        }
        if (bytes == 0) throw new IllegalArgumentException("no weight bytes to read");
        MemorySegment[] parts = chunks.toArray(MemorySegment[]::new);
        long[] sums = new long[parts.length];
        IntConsumer read = i -> sums[i] = sum(parts[i]);
        double best = Double.POSITIVE_INFINITY;
        try (WorkerPool pool = new WorkerPool(threads)) {
            long pass, warmed = 0, warmStart = System.nanoTime();
            do {
                long t0 = System.nanoTime();
                pool.forEach(parts.length, read);
                pass = System.nanoTime() - t0;
                warmed += bytes;
            } while (System.nanoTime() - warmStart < WARM_UP_MILLIS * 1_000_000L || warmed < WARM_UP_BYTES);
            int repeats = (int) Math.max(1, Math.min(100_000, MIN_SAMPLE_MILLIS * 1_000_000L / Math.max(1, pass)));
            for (int s = 0; s < samples; s++) {
                long t0 = System.nanoTime();
                for (int r = 0; r < repeats; r++) pool.forEach(parts.length, read);
                best = Math.min(best, (System.nanoTime() - t0) / 1e9 / repeats);
            }
        }
        long total = 0;
        for (long s : sums) total += s;
        sink = total;
        return new Result(bytes, best, bytes / best / 1e9, threads, samples);
    }

    /** The sum of {@code seg} read as little-endian longs (the last bytes one by one), read in vectors. */
    static long sum(MemorySegment seg) {
        long n = seg.byteSize();
        long step = L.vectorByteSize();
        LongVector a0 = LongVector.zero(L), a1 = a0, a2 = a0, a3 = a0;
        long off = 0;
        for (long end = n - 4 * step; off <= end; off += 4 * step) {
            a0 = a0.add(LongVector.fromMemorySegment(L, seg, off, ByteOrder.LITTLE_ENDIAN));
            a1 = a1.add(LongVector.fromMemorySegment(L, seg, off + step, ByteOrder.LITTLE_ENDIAN));
            a2 = a2.add(LongVector.fromMemorySegment(L, seg, off + 2 * step, ByteOrder.LITTLE_ENDIAN));
            a3 = a3.add(LongVector.fromMemorySegment(L, seg, off + 3 * step, ByteOrder.LITTLE_ENDIAN));
        }
        for (; off + step <= n; off += step) a0 = a0.add(LongVector.fromMemorySegment(L, seg, off, ByteOrder.LITTLE_ENDIAN));
        long s = a0.add(a1).add(a2).add(a3).reduceLanes(VectorOperators.ADD);
        for (; off + Long.BYTES <= n; off += Long.BYTES) s += seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), off);
        for (; off < n; off++) s += seg.get(ValueLayout.JAVA_BYTE, off);
        return s;
    }

    /**
     * Bytes a plain decoding step reads from the model's weights: all of them, except the token embedding when
     * the output head has its own matrix (a step then reads one row of the embedding, which is left out). When
     * the head is tied to the embedding, the embedding counts once, as the head. K/V-cache reads are not counted.
     */
    public static long bytesPerToken(ModelFile file) {
        return bytesPerToken(file.tensors(), file.config().tiedEmbeddings());
    }

    /** {@link #bytesPerToken(ModelFile)} of these tensors. */
    public static long bytesPerToken(Collection<Tensor> tensors, boolean tiedEmbeddings) {
        long n = 0;
        for (Tensor t : tensors) if (tiedEmbeddings || !t.name().equals("token_embd.weight")) n += t.byteSize();
        return n;
    }

    /**
     * Plain decoding against the read-bandwidth limit.
     *
     * @param before        bandwidth measured right before the plain runs
     * @param after         bandwidth measured right after them
     * @param bytesPerToken {@link #bytesPerToken(ModelFile)}
     */
    public record Limit(Result before, Result after, long bytesPerToken) {
        public Limit {
            if (bytesPerToken <= 0) throw new IllegalArgumentException("bytes per token must be positive, got " + bytesPerToken);
        }

        /** The mean of the two measurements, GB/s. */
        public double gbPerSecond() { return (before.gbPerSecond() + after.gbPerSecond()) / 2; }

        /** Tokens per second if a decoding step took only the time to read its weights once. */
        public double limitTokensPerSecond() { return gbPerSecond() * 1e9 / bytesPerToken; }

        /** {@code tokensPerSecond} as a percentage of {@link #limitTokensPerSecond()}. */
        public double percentOfLimit(double tokensPerSecond) { return 100 * tokensPerSecond / limitTokensPerSecond(); }

        /** "= 71 % of the read-bandwidth limit (7.98 tok/s: 3.41 GB per token at 27.2 GB/s)"; one decimal under 10 %. */
        public String statement(double tokensPerSecond) {
            double percent = percentOfLimit(tokensPerSecond);
            return String.format(Locale.ROOT, "= %s %% of the read-bandwidth limit (%.2f tok/s: %s per token at %.1f GB/s)",
                    String.format(Locale.ROOT, percent >= 10 ? "%.0f" : "%.1f", percent), limitTokensPerSecond(), bytes(bytesPerToken), gbPerSecond());
        }

        /** "read bandwidth: 27.0 GB/s before, 27.4 GB/s after the plain runs (2 threads, best of 5 reads of 3.41 GB)". */
        public String detail() {
            return String.format(Locale.ROOT, "read bandwidth: %.1f GB/s before, %.1f GB/s after the plain runs (%d threads, best of %d reads of %s)",
                    before.gbPerSecond(), after.gbPerSecond(), before.threads(), before.samples(), bytes(before.bytesPerPass()));
        }

        /** The JSON fields: read_bandwidth_gb_per_s (mean), its two measurements, bytes_per_token, the limit and the percentage. */
        public Map<String, Object> toMap(double tokensPerSecond) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("read_bandwidth_gb_per_s", gbPerSecond());
            m.put("read_bandwidth_gb_per_s_before", before.gbPerSecond());
            m.put("read_bandwidth_gb_per_s_after", after.gbPerSecond());
            m.put("bytes_per_token", bytesPerToken);
            m.put("limit_tokens_per_second", limitTokensPerSecond());
            m.put("percent_of_limit", percentOfLimit(tokensPerSecond));
            return m;
        }

        private static String bytes(long n) {
            return n >= 1e9 ? String.format(Locale.ROOT, "%.2f GB", n / 1e9) : String.format(Locale.ROOT, "%.1f MB", n / 1e6);
        }
    }
}
