package dev.tandem.bench;

import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.EngineStats;
import dev.tandem.engine.FinishReason;
import dev.tandem.engine.Generation;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.GenerationStats;
import dev.tandem.engine.SamplingSettings;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.OptionalLong;
import java.util.function.Consumer;

/**
 * Concurrent requests through the {@link Engine}, the path {@code tandem serve} runs. At each concurrency P, P
 * requests (distinct prompts, greedy, the same number of tokens each, end-of-generation ignored so that every
 * request runs to its length) are submitted at once: a plain round, then a speculative round, then plain again, for
 * the rounds asked. Plain and speculative alternate because the machine's memory bandwidth drifts over minutes, so
 * each ratio compares neighbouring rounds and the medians ride out a slow one. Every speculative output must equal
 * the plain output of its prompt in the round before (greedy decoding is exact); otherwise the run stops with
 * {@link SpeculativeMismatchException}.
 */
public final class ParallelBench {

    /**
     * @param prompts       token ids; request i of a round gets prompt i, so there are at least as many as the largest concurrency
     * @param concurrencies the request counts P to measure, in order
     * @param maxTokens     tokens each request generates
     * @param draft         how the speculative rounds draft (a draft model or n-gram lookup, draft-max, p-min)
     * @param rounds        plain/speculative round pairs per concurrency
     */
    public record Settings(List<int[]> prompts, List<Integer> concurrencies, int maxTokens, DraftSettings draft, int rounds) {
        public Settings {
            prompts = List.copyOf(prompts);
            concurrencies = List.copyOf(concurrencies);
            if (concurrencies.isEmpty()) throw new IllegalArgumentException("the bench needs at least one concurrency");
            for (int p : concurrencies) {
                if (p < 1) throw new IllegalArgumentException("a concurrency must be at least 1, got " + p);
                if (p > prompts.size()) throw new IllegalArgumentException(p + " concurrent requests need " + p + " distinct prompts, got " + prompts.size());
            }
            if (maxTokens < 1) throw new IllegalArgumentException("max tokens must be at least 1, got " + maxTokens);
            if (rounds < 1) throw new IllegalArgumentException("rounds must be at least 1, got " + rounds);
            if (!draft.enabled()) throw new IllegalArgumentException("the speculative rounds need a draft");
        }

        /** The engine needs this many batch slots, so that a round's requests all run at once. */
        public int largestConcurrency() { return concurrencies.stream().mapToInt(Integer::intValue).max().orElseThrow(); }
    }

    /**
     * One concurrency's results: medians over its rounds, except where said.
     *
     * @param tokens                 tokens one round generates, plain or speculative (P × max tokens)
     * @param plainTokensPerSecond   aggregate: a round's tokens over its wall time, from submitting its P requests to the
     *                               last one's end (queueing and prefill included, as clients see it)
     * @param ratio                  the median over round pairs of speculative over plain aggregate tok/s
     * @param plainPerRequest        a request's own tok/s (its tokens after the first, per second), the mean of a round's requests
     * @param plainMainPasses        main-model forward passes of a round, its P prefills included
     * @param speculativeDraftPasses draft-model forward passes of a speculative round; empty while the engine does not count them
     * @param acceptance             accepted over verified draft tokens, all speculative rounds together
     * @param outputsEqual           speculative outputs found equal to plain ones (all of them, P × rounds: a difference stops the run)
     */
    public record Row(int parallel, long tokens, double plainTokensPerSecond, double speculativeTokensPerSecond, double ratio,
                      double plainPerRequest, double speculativePerRequest, double plainMainPasses, double speculativeMainPasses,
                      OptionalDouble speculativeDraftPasses, double acceptance, int outputsEqual) {
        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("parallel", parallel);
            m.put("tokens_per_round", tokens);
            m.put("plain_tokens_per_second", plainTokensPerSecond);
            m.put("speculative_tokens_per_second", speculativeTokensPerSecond);
            m.put("speculative_over_plain", ratio);
            m.put("plain_tokens_per_second_per_request", plainPerRequest);
            m.put("speculative_tokens_per_second_per_request", speculativePerRequest);
            m.put("plain_main_passes", plainMainPasses);
            m.put("speculative_main_passes", speculativeMainPasses);
            m.put("speculative_draft_passes", speculativeDraftPasses.isPresent() ? speculativeDraftPasses.getAsDouble() : null);
            m.put("acceptance_rate", acceptance);
            m.put("same_output_as_plain", outputsEqual);
            return m;
        }
    }

    /** The rows, one per concurrency, and one line saying what ran (models, draft, backend, rounds, tokens). */
    public record Report(String setup, List<Row> rows) {
        public Report {
            rows = List.copyOf(rows);
        }

        public Map<String, Object> toMap() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("setup", setup);
            m.put("rows", rows.stream().map(Row::toMap).toList());
            return m;
        }

        /** A Markdown table, the setup line above it and what its columns mean below. */
        public String markdown() {
            StringBuilder sb = new StringBuilder(setup).append("\n\n");
            sb.append("| parallel | tokens/round | plain tok/s | speculative tok/s | spec/plain | plain tok/s per request "
                    + "| spec tok/s per request | plain main passes | spec main passes | spec draft passes | accepted | same output |\n");
            sb.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
            for (Row r : rows) {
                sb.append(String.format(Locale.ROOT, "| %d | %d | %.2f | %.2f | %.2fx | %.2f | %.2f | %s | %s | %s | %.1f %% | %d/%d |%n",
                        r.parallel(), r.tokens(), r.plainTokensPerSecond(), r.speculativeTokensPerSecond(), r.ratio(), r.plainPerRequest(),
                        r.speculativePerRequest(), count(r.plainMainPasses()), count(r.speculativeMainPasses()),
                        r.speculativeDraftPasses().isPresent() ? count(r.speculativeDraftPasses().getAsDouble()) : "n/a",
                        100 * r.acceptance(), r.outputsEqual(), r.outputsEqual()));
            }
            sb.append("\ntok/s: a round's tokens over its wall time (submission to the last request's end, prefill included); per request: "
                    + "each request's tokens after its first, per second, the mean of the round. spec/plain: the median of each round pair's "
                    + "ratio. Passes: one round's forward passes, prefills included (draft passes n/a: prompt lookup runs no model). "
                    + "Medians over the rounds; same output: speculative outputs equal to plain, over all rounds.\n");
            return sb.toString();
        }

        /** A pass count, whole unless it is the median of an even number of rounds. */
        private static String count(double passes) {
            return passes == Math.rint(passes) ? String.format(Locale.ROOT, "%.0f", passes) : String.format(Locale.ROOT, "%.1f", passes);
        }
    }

    /** P requests of one kind submitted at once, and what they gave. */
    private record Round(double seconds, long tokens, double meanRequestTokensPerSecond, long mainPasses, OptionalLong draftPasses,
                         long acceptedDraftTokens, long verifiedDraftTokens, List<int[]> outputs, String draftName) {
        double tokensPerSecond() { return tokens / seconds; }
    }

    private final Engine engine;
    private final Consumer<String> progress;

    /** Runs on {@code engine}, which the caller owns; {@code progress} gets a line per round pair ({@code s -> {}} for quiet). */
    public ParallelBench(Engine engine, Consumer<String> progress) {
        this.engine = engine;
        this.progress = progress;
    }

    public Report run(Settings s) {
        // Unmeasured: compiles the decode paths for both kinds before the first timed round.
        engine.warmUp();
        int first = s.concurrencies().getFirst();
        round(s, first, DraftSettings.off());
        round(s, first, s.draft());
        List<Row> rows = new ArrayList<>();
        String draftName = null;
        for (int p : s.concurrencies()) {
            List<Round> plain = new ArrayList<>(), speculative = new ArrayList<>();
            for (int r = 1; r <= s.rounds(); r++) {
                Round a = round(s, p, DraftSettings.off());
                Round b = round(s, p, s.draft());
                requireSameOutputs(p, r, a.outputs(), b.outputs());
                plain.add(a);
                speculative.add(b);
                draftName = b.draftName();
                progress.accept(String.format(Locale.ROOT, "parallel %d, round %d of %d: plain %.2f tok/s, speculative %.2f tok/s (%.2fx)",
                        p, r, s.rounds(), a.tokensPerSecond(), b.tokensPerSecond(), b.tokensPerSecond() / a.tokensPerSecond()));
            }
            rows.add(row(p, plain, speculative));
        }
        return new Report(setup(s, draftName), rows);
    }

    private static Row row(int parallel, List<Round> plain, List<Round> speculative) {
        double[] ratios = new double[plain.size()];
        for (int i = 0; i < ratios.length; i++) ratios[i] = speculative.get(i).tokensPerSecond() / plain.get(i).tokensPerSecond();
        long accepted = speculative.stream().mapToLong(Round::acceptedDraftTokens).sum();
        long verified = speculative.stream().mapToLong(Round::verifiedDraftTokens).sum();
        OptionalDouble draftPasses = speculative.stream().allMatch(r -> r.draftPasses().isPresent())
                ? OptionalDouble.of(Median.of(speculative.stream().mapToLong(r -> r.draftPasses().getAsLong()).toArray()))
                : OptionalDouble.empty();
        return new Row(parallel, plain.getFirst().tokens(),
                Median.of(plain.stream().mapToDouble(Round::tokensPerSecond).toArray()),
                Median.of(speculative.stream().mapToDouble(Round::tokensPerSecond).toArray()),
                Median.of(ratios),
                Median.of(plain.stream().mapToDouble(Round::meanRequestTokensPerSecond).toArray()),
                Median.of(speculative.stream().mapToDouble(Round::meanRequestTokensPerSecond).toArray()),
                Median.of(plain.stream().mapToLong(Round::mainPasses).toArray()),
                Median.of(speculative.stream().mapToLong(Round::mainPasses).toArray()),
                draftPasses, verified == 0 ? 0 : (double) accepted / verified, plain.size() * parallel);
    }

    /** Submits requests 0..parallel-1 at once and waits for all of them. */
    private Round round(Settings s, int parallel, DraftSettings draft) {
        EngineStats before = engine.stats();
        Map<String, Long> passesBefore = engine.forwardPasses();
        List<Generation> running = new ArrayList<>(parallel);
        long t0 = System.nanoTime();
        for (int i = 0; i < parallel; i++) {
            running.add(engine.generate(GenerationRequest.builder().promptTokens(s.prompts().get(i)).maxTokens(s.maxTokens())
                    .ignoreEndOfGeneration(true).sampling(SamplingSettings.greedy()).draft(draft).build()));
        }
        List<GenerationOutput> outputs = new ArrayList<>(parallel);
        for (Generation g : running) outputs.add(g.await());
        double seconds = (System.nanoTime() - t0) / 1e9;
        EngineStats after = engine.stats();
        long tokens = 0, accepted = 0, verified = 0;
        double perRequest = 0;
        for (int i = 0; i < parallel; i++) {
            GenerationOutput o = outputs.get(i);
            if (o.finishReason() != FinishReason.LENGTH || o.tokenIds().length != s.maxTokens()) {
                throw new IllegalStateException("request " + (i + 1) + " of " + parallel + " ended (" + o.finishReason().apiName() + ") after "
                        + o.tokenIds().length + " of its " + s.maxTokens() + " tokens; a bench request runs to its length");
            }
            GenerationStats st = o.stats();
            tokens += o.tokenIds().length;
            accepted += st.acceptedDraftTokens();
            verified += st.acceptedDraftTokens() + st.rejectedDraftTokens();
            perRequest += st.tokensPerSecond();
        }
        String draftModel = outputs.getFirst().stats().draftModel();
        return new Round(seconds, tokens, perRequest / parallel, after.forwardPasses() - before.forwardPasses(),
                draftPasses(draftModel, passesBefore, engine.forwardPasses()),
                accepted, verified, outputs.stream().map(GenerationOutput::tokenIds).toList(), draftModel);
    }

    /** The draft model's passes over a round; none for plain rounds and n-gram lookup, which has no model. */
    private static OptionalLong draftPasses(String draftModel, Map<String, Long> before, Map<String, Long> after) {
        if (draftModel == null || !before.containsKey(draftModel)) return OptionalLong.empty();
        return OptionalLong.of(after.get(draftModel) - before.get(draftModel));
    }

    /**
     * Throws {@link SpeculativeMismatchException} naming the first request whose speculative tokens differ from the
     * plain ones of the same prompt, and where.
     */
    static void requireSameOutputs(int parallel, int round, List<int[]> plain, List<int[]> speculative) {
        for (int i = 0; i < plain.size(); i++) {
            int[] a = plain.get(i), b = speculative.get(i);
            int at = java.util.Arrays.mismatch(a, b);
            if (at >= 0) {
                throw new SpeculativeMismatchException(String.format(Locale.ROOT,
                        "greedy speculative output differs from plain decoding (it must be identical): %d concurrent requests, round %d, prompt %d, "
                                + "token %d is %s speculative, %s plain", parallel, round, i + 1, at + 1,
                        at < b.length ? Integer.toString(b[at]) : "missing", at < a.length ? Integer.toString(a[at]) : "missing"));
            }
        }
    }

    private String setup(Settings s, String draftName) {
        DraftSettings d = s.draft();
        Engine.BackendInfo backend = engine.backend();
        String policy = d.adaptive()
                ? String.format(Locale.ROOT, "adaptive draft length up to %d, chosen for the batch", d.draftMax())
                : String.format(Locale.ROOT, "draft-max %d, p-min %s", d.draftMax(), trim(d.draftPMin()));
        return String.format(Locale.ROOT, "%s, speculative with %s (%s), on %s (%s); at each concurrency P, P requests at once, "
                        + "distinct prompts, greedy, %d tokens each; %d plain/speculative round pair%s per concurrency, interleaved",
                engine.mainModel().id(), draftName, policy, backend.name(), backend.description(),
                s.maxTokens(), s.rounds(), s.rounds() == 1 ? "" : "s");
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? String.format(Locale.ROOT, "%.0f", v) : Double.toString(v);
    }
}
