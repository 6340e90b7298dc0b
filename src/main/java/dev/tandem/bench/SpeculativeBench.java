package dev.tandem.bench;

import dev.tandem.decode.DraftPolicy;
import dev.tandem.decode.Drafter;
import dev.tandem.decode.GenerationLimits;
import dev.tandem.decode.GenerationStats;
import dev.tandem.decode.Generator;
import dev.tandem.decode.PlainGenerator;
import dev.tandem.decode.SamplerSettings;
import dev.tandem.decode.SpeculativeGenerator;
import dev.tandem.runtime.Batch;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Plain against speculative decoding in one process. For each draft length (and the adaptive policy) every
 * prompt runs plain then speculative, back to back, so both see the same machine state (memory bandwidth
 * drifts); tokens/s are totals over the prompts of generated tokens over generation time (prefill excluded).
 * Also times the main model's (k+1)-row pass against its one-row pass: the cost that decides whether
 * speculation can pay.
 */
public final class SpeculativeBench {

    /**
     * @param prompts   token ids of each prompt
     * @param maxTokens tokens generated per prompt
     * @param draftMax  fixed draft lengths to try (draft-min 0)
     * @param adaptive  also run the adaptive policy (reported with {@code adaptive = true})
     * @param draftPMin p-min of the fixed policies
     * @param repeats   passes over the prompts per configuration
     * @param sampler   settings for both runs (greedy by default)
     */
    public record Settings(List<int[]> prompts, int maxTokens, List<Integer> draftMax, boolean adaptive, float draftPMin,
                           int repeats, SamplerSettings sampler) {
        public Settings {
            if (prompts.isEmpty()) throw new IllegalArgumentException("the bench needs at least one prompt");
            if (maxTokens < 1) throw new IllegalArgumentException("max tokens must be at least 1, got " + maxTokens);
            if (repeats < 1) throw new IllegalArgumentException("repeats must be at least 1, got " + repeats);
            prompts = List.copyOf(prompts);
            draftMax = List.copyOf(draftMax);
        }

        /** Draft lengths 1, 2, 3, 4, 6, 8, 12, 16 and adaptive, p-min 0, greedy, one pass. */
        public static Settings defaults(List<int[]> prompts, int maxTokens) {
            return new Settings(prompts, maxTokens, List.of(1, 2, 3, 4, 6, 8, 12, 16), true, 0f, 1, SamplerSettings.greedy());
        }
    }

    /**
     * One configuration's result. {@code draftMax} is the adaptive policy's upper bound when {@code adaptive};
     * {@code plainTokens} and {@code plainMillis} are the totals behind {@code plainTokensPerSecond}.
     */
    public record Row(int draftMax, boolean adaptive, double plainTokensPerSecond, double specTokensPerSecond,
                      double acceptanceRate, double meanAcceptedLength, long draftedTokens, long acceptedTokens,
                      int promptsIdentical, int prompts, long plainTokens, double plainMillis) {
        public double speedup() { return specTokensPerSecond / plainTokensPerSecond; }

        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("draft_max", draftMax);
            m.put("adaptive", adaptive);
            m.put("plain_tokens_per_second", plainTokensPerSecond);
            m.put("spec_tokens_per_second", specTokensPerSecond);
            m.put("speedup", speedup());
            m.put("acceptance_rate", acceptanceRate);
            m.put("mean_accepted_length", meanAcceptedLength);
            m.put("total_draft_tokens_count", draftedTokens);
            m.put("accepted_draft_tokens_count", acceptedTokens);
            m.put("same_tokens_as_plain", promptsIdentical);
            m.put("prompts", prompts);
            return m;
        }
    }

    /**
     * @param runs     one row per configuration, fixed lengths first
     * @param passCost {@code passCost[k-1]}: median time of a (k+1)-row main pass over a one-row pass, k = 1..8
     */
    public record Report(List<Row> runs, double[] passCost) {
        public Report {
            runs = List.copyOf(runs);
            passCost = passCost.clone();
        }

        @Override
        public double[] passCost() { return passCost.clone(); }

        /** Plain decoding over the plain runs of every configuration: all their tokens over all their time. */
        public double plainTokensPerSecond() {
            long tokens = 0;
            double millis = 0;
            for (Row r : runs) {
                tokens += r.plainTokens();
                millis += r.plainMillis();
            }
            return tokens * 1000.0 / millis;
        }

        /** {@code {"runs":[…], "pass_cost":[{"k":1,"relative_cost":…}, …]}}, ready for Jackson. */
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("runs", runs.stream().map(Row::toMap).toList());
            List<Map<String, Object>> costs = new ArrayList<>();
            for (int k = 1; k <= passCost.length; k++) costs.add(Map.of("k", k, "relative_cost", passCost[k - 1]));
            m.put("pass_cost", costs);
            return m;
        }

        /** A plain-text table. */
        public String table() {
            StringBuilder sb = new StringBuilder(String.format("%-10s %10s %10s %8s %10s %12s %9s%n",
                    "draft_max", "plain t/s", "spec t/s", "speedup", "accepted", "mean length", "identical"));
            for (Row r : runs) {
                sb.append(String.format("%-10s %10.1f %10.1f %7.2fx %9.1f%% %12.2f %6d/%d%n",
                        r.adaptive() ? "adaptive" : Integer.toString(r.draftMax()), r.plainTokensPerSecond(),
                        r.specTokensPerSecond(), r.speedup(), 100 * r.acceptanceRate(), r.meanAcceptedLength(),
                        r.promptsIdentical(), r.prompts()));
            }
            sb.append("cost of a (k+1)-row main pass over a 1-row pass:");
            for (int k = 1; k <= passCost.length; k++) sb.append(String.format(" k=%d %.2f", k, passCost[k - 1]));
            return sb.append('\n').toString();
        }
    }

    private final LoadedModel main;
    private final Drafter drafter;
    private final Consumer<String> progress;
    /** Makes the speculative generator of a configuration. */
    private final java.util.function.BiFunction<DraftPolicy, SamplerSettings, Generator> speculative;

    /** {@code progress} receives one line per finished configuration (pass {@code s -> {}} for quiet). */
    public SpeculativeBench(LoadedModel main, Drafter drafter, Consumer<String> progress) {
        this(main, drafter, (policy, sampler) -> new SpeculativeGenerator(main, drafter, policy, sampler), progress);
    }

    /** Measures the generators {@code speculative} makes (e.g. a draft-ahead generator on a GPU) instead of {@link SpeculativeGenerator}. */
    public SpeculativeBench(LoadedModel main, Drafter drafter, java.util.function.BiFunction<DraftPolicy, SamplerSettings, Generator> speculative,
                            Consumer<String> progress) {
        this.main = main;
        this.drafter = drafter;
        this.speculative = speculative;
        this.progress = progress;
    }

    public Report run(Settings s) {
        GenerationLimits limits = GenerationLimits.of(s.maxTokens());
        PlainGenerator plain = new PlainGenerator(main, s.sampler());
        // Warm-up (JIT, caches) on the first prompt, not measured.
        plain.generate(s.prompts().getFirst(), limits);
        speculative.apply(DraftPolicy.Fixed.always(4), s.sampler()).generate(s.prompts().getFirst(), limits);
        List<Row> rows = new ArrayList<>();
        for (int k : s.draftMax()) rows.add(measure(plain, new DraftPolicy.Fixed(k, 0, s.draftPMin()), false, s, limits));
        if (s.adaptive()) {
            int max = s.draftMax().stream().mapToInt(Integer::intValue).max().orElse(16);
            rows.add(measure(plain, new DraftPolicy.Adaptive(max, 0f, DraftPolicy.Adaptive.defaults().probeInterval()), true, s, limits));
        }
        return new Report(rows, passCost(s.prompts().getFirst(), 8, 15));
    }

    private Row measure(PlainGenerator plain, DraftPolicy policy, boolean adaptive, Settings s, GenerationLimits limits) {
        Generator spec = speculative.apply(policy, s.sampler());
        long plainTokens = 0, specTokens = 0, drafted = 0, accepted = 0, passes = 0;
        double plainMillis = 0, specMillis = 0;
        int identical = 0;
        for (int rep = 0; rep < s.repeats(); rep++) {
            for (int[] prompt : s.prompts()) {
                var p = plain.generate(prompt, limits);
                var r = spec.generate(prompt, limits);
                GenerationStats ps = p.stats(), ss = r.stats();
                plainTokens += ps.generatedTokens();
                plainMillis += ps.generationMillis();
                specTokens += ss.generatedTokens();
                specMillis += ss.generationMillis();
                drafted += ss.acceptedTokens() + ss.rejectedTokens();
                accepted += ss.acceptedTokens();
                passes += ss.verificationPasses();
                if (rep == 0 && Arrays.equals(p.tokens(), r.tokens())) identical++;
            }
        }
        Row row = new Row(policy.draftMax(), adaptive, plainTokens * 1000.0 / plainMillis, specTokens * 1000.0 / specMillis,
                drafted > 0 ? (double) accepted / drafted : 0, passes > 0 ? (double) accepted / passes : 0, drafted, accepted,
                identical, s.prompts().size(), plainTokens, plainMillis);
        progress.accept(String.format("draft_max %s: plain %.1f t/s, speculative %.1f t/s (%.2fx), acceptance %.1f%%",
                adaptive ? "adaptive" : policy.draftMax(), row.plainTokensPerSecond(), row.specTokensPerSecond(), row.speedup(), 100 * row.acceptanceRate()));
        return row;
    }

    /**
     * Median time of a (k+1)-row pass over the median one-row pass, k = 1..maxK, after {@code context} is in the
     * cache; measurements of all row counts are interleaved, {@code samples} of each.
     */
    public double[] passCost(int[] context, int maxK, int samples) {
        int rowsMax = maxK + 1;
        PagedKvCache tables = new PagedKvCache(16, (context.length + rowsMax + 15) / 16 + 1);
        long[][] nanos = new long[rowsMax + 1][samples];
        try (KvCache kv = main.createKvCache(tables)) {
            int seq = tables.createSequence();
            tables.reserve(seq, context.length);
            main.forward(Batch.of(seq, 0, context, false), kv);
            int[] tokens = new int[rowsMax];
            for (int i = 0; i < rowsMax; i++) tokens[i] = context[i % context.length];
            for (int sample = -1; sample < samples; sample++) {          // sample -1 warms up
                for (int rows = 1; rows <= rowsMax; rows++) {
                    Batch b = Batch.of(seq, context.length, Arrays.copyOf(tokens, rows), true);
                    tables.reserve(seq, context.length + rows);
                    long t0 = System.nanoTime();
                    main.forward(b, kv);
                    long dt = System.nanoTime() - t0;
                    tables.truncate(seq, context.length);
                    if (sample >= 0) nanos[rows][sample] = dt;
                }
            }
            tables.release(seq);
        }
        double one = Median.of(nanos[1]);
        double[] out = new double[maxK];
        for (int k = 1; k <= maxK; k++) out[k - 1] = Median.of(nanos[k + 1]) / one;
        return out;
    }
}
