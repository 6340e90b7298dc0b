package dev.tandem.bench;

import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.GenerationStats;
import dev.tandem.engine.SamplingSettings;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

/**
 * Plain against speculative decoding through an {@link Engine}, one request at a time — the scheduler, drafting
 * and (on CUDA) draft-ahead that {@code tandem serve} runs. For each draft length (and the adaptive policy) every
 * prompt runs plain then speculative, back to back, so both see the same machine state (memory bandwidth drifts);
 * tokens/s are totals over the prompts of generated tokens over generation time (prefill excluded). The cost of a
 * (k+1)-row main pass against a one-row pass, the figure that decides whether speculation can pay, is measured apart
 * ({@link PassCostProbe}) and attached to the report.
 */
public final class SpeculativeBench {

    /**
     * @param prompts   token ids of each prompt
     * @param maxTokens tokens generated per prompt
     * @param draftMax  fixed draft lengths to try (draft-min 0)
     * @param adaptive  also run the adaptive policy (reported with {@code adaptive = true})
     * @param draftPMin p-min of the fixed policies
     * @param repeats   passes over the prompts per configuration
     * @param sampling  settings for both runs (greedy by default)
     */
    public record Settings(List<int[]> prompts, int maxTokens, List<Integer> draftMax, boolean adaptive, float draftPMin,
                           int repeats, SamplingSettings sampling) {
        public Settings {
            if (prompts.isEmpty()) throw new IllegalArgumentException("the bench needs at least one prompt");
            if (maxTokens < 1) throw new IllegalArgumentException("max tokens must be at least 1, got " + maxTokens);
            if (repeats < 1) throw new IllegalArgumentException("repeats must be at least 1, got " + repeats);
            prompts = List.copyOf(prompts);
            draftMax = List.copyOf(draftMax);
        }

        /** Draft lengths 1, 2, 3, 4, 6, 8, 12, 16 and adaptive, p-min 0, greedy, one pass. */
        public static Settings defaults(List<int[]> prompts, int maxTokens) {
            return new Settings(prompts, maxTokens, List.of(1, 2, 3, 4, 6, 8, 12, 16), true, 0f, 1, SamplingSettings.greedy());
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
     *                 ({@link PassCostProbe}); empty until {@link #withPassCost} attaches it
     */
    public record Report(List<Row> runs, double[] passCost) {
        public Report {
            runs = List.copyOf(runs);
            passCost = passCost.clone();
        }

        /** This report with the pass costs measured apart. */
        public Report withPassCost(double[] cost) { return new Report(runs, cost); }

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
            if (passCost.length == 0) return sb.toString();
            sb.append("cost of a (k+1)-row main pass over a 1-row pass:");
            for (int k = 1; k <= passCost.length; k++) sb.append(String.format(" k=%d %.2f", k, passCost[k - 1]));
            return sb.append('\n').toString();
        }
    }

    /** Least time spent warming up before the first measured run. */
    static final long WARM_UP_NANOS = 3_000_000_000L;

    private final Engine engine;
    private final DraftSettings drafting;
    private final Consumer<String> progress;

    /**
     * Benchmarks {@code engine}'s main model plainly and with {@code drafting} (a draft model or n-gram lookup; its
     * lengths are set per configuration). {@code progress} receives one line per finished configuration ({@code s -> {}}
     * for quiet).
     */
    public SpeculativeBench(Engine engine, DraftSettings drafting, Consumer<String> progress) {
        if (!drafting.enabled()) throw new IllegalArgumentException("the speculative bench needs a draft model or n-gram lookup");
        this.engine = engine;
        this.drafting = drafting;
        this.progress = progress;
    }

    /** The fixed draft lengths, then the adaptive policy; pass costs are left empty ({@link Report#withPassCost}). */
    public Report run(Settings s) {
        // Warm-up (JIT, caches), not measured: plain and speculative runs of the first prompt, at least one of each and
        // for at least WARM_UP_NANOS, so that a small model's decode loop is compiled before the first configuration.
        long start = System.nanoTime();
        do {
            generate(s.prompts().getFirst(), DraftSettings.off(), s);
            generate(s.prompts().getFirst(), drafting.withLimits(4, 0, 0).withAdaptive(false), s);
        } while (System.nanoTime() - start < WARM_UP_NANOS);
        List<Row> rows = new ArrayList<>();
        for (int k : s.draftMax()) rows.add(measure(drafting.withLimits(k, 0, s.draftPMin()).withAdaptive(false), s));
        if (s.adaptive()) {
            int max = s.draftMax().stream().mapToInt(Integer::intValue).max().orElse(DraftSettings.DEFAULT_MAX);
            rows.add(measure(drafting.withLimits(max, 0, 0).withAdaptive(true), s));
        }
        return new Report(rows, new double[0]);
    }

    /** Exactly {@code maxTokens} tokens (end of generation ignored), so that every run does the same work. */
    private GenerationOutput generate(int[] prompt, DraftSettings draft, Settings s) {
        return engine.generateBlocking(GenerationRequest.builder().promptTokens(prompt).maxTokens(s.maxTokens())
                .ignoreEndOfGeneration(true).sampling(s.sampling()).draft(draft).build());
    }

    private Row measure(DraftSettings draft, Settings s) {
        long plainTokens = 0, specTokens = 0, drafted = 0, accepted = 0, passes = 0;
        double plainMillis = 0, specMillis = 0;
        int identical = 0;
        for (int rep = 0; rep < s.repeats(); rep++) {
            for (int[] prompt : s.prompts()) {
                GenerationOutput p = generate(prompt, DraftSettings.off(), s);
                GenerationOutput r = generate(prompt, draft, s);
                GenerationStats ps = p.stats(), ss = r.stats();
                plainTokens += ps.completionTokens();
                plainMillis += ps.generationMillis();
                specTokens += ss.completionTokens();
                specMillis += ss.generationMillis();
                drafted += ss.acceptedDraftTokens() + ss.rejectedDraftTokens();
                accepted += ss.acceptedDraftTokens();
                passes += ss.verificationPasses();
                if (rep == 0 && Arrays.equals(p.tokenIds(), r.tokenIds())) identical++;
            }
        }
        Row row = new Row(draft.draftMax(), draft.adaptive(), plainTokens * 1000.0 / plainMillis, specTokens * 1000.0 / specMillis,
                drafted > 0 ? (double) accepted / drafted : 0, passes > 0 ? (double) accepted / passes : 0, drafted, accepted,
                identical, s.prompts().size(), plainTokens, plainMillis);
        progress.accept(String.format("draft_max %s: plain %.1f t/s, speculative %.1f t/s (%.2fx), acceptance %.1f%%",
                draft.adaptive() ? "adaptive" : draft.draftMax(), row.plainTokensPerSecond(), row.specTokensPerSecond(), row.speedup(),
                100 * row.acceptanceRate()));
        return row;
    }
}
