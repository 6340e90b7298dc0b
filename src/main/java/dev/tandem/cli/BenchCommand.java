package dev.tandem.cli;

import dev.tandem.bench.BenchPlot;
import dev.tandem.bench.ChatTurnBench;
import dev.tandem.bench.ParallelBench;
import dev.tandem.bench.PassCostProbe;
import dev.tandem.bench.ReadBandwidth;
import dev.tandem.bench.SpeculativeBench;
import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.GenerationStats;
import dev.tandem.engine.SamplingSettings;
import dev.tandem.engine.Tandem;
import dev.tandem.model.ModelFile;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code tandem bench}: the main model alone and with the draft, on the same prompts in one process,
 * interleaved prompt by prompt; without {@code --draft}, plain decoding only. On the CPU backend every run also
 * measures the read bandwidth of the main model's weights ({@link ReadBandwidth}, same threads, right before and
 * after the plain runs) and states plain decoding as a percentage of the limit that bandwidth sets.
 */
@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Measure plain and speculative decoding speed, acceptance and the cost of multi-row passes.")
final class BenchCommand implements Callable<Integer> {
    /** Verse openings like the reference engine's speculative prompts: enough for 16 distinct concurrent requests. */
    static final List<String> VERSE_OPENINGS = List.of(
            "In the beginning God created", "And it came to pass", "The LORD is my shepherd",
            "And the LORD spake unto Moses, saying,", "Blessed are the", "Thus saith the LORD",
            "For God so loved the world", "In the beginning was the Word", "And God said, Let there be light",
            "Our Father which art in heaven", "Now the serpent was more subtil", "Let not your heart be troubled",
            "And the earth was without form", "I am the way, the truth", "Hear, O Israel", "Vanity of vanities, saith the Preacher");
    /** The prompts of the sequential runs: the first six openings, which the committed tables were measured on. */
    static final List<String> DEFAULT_PROMPTS = VERSE_OPENINGS.subList(0, 6);
    /** Draft length of the speculative rounds of {@code --parallel} when {@code --draft-max} is not given: the README's speed figures use 4. */
    static final int PARALLEL_DRAFT_MAX = 4;

    @Spec CommandSpec spec;
    @Mixin ModelOptions model;
    @Mixin RuntimeOptions runtime;

    @Option(names = {"-d", "--draft"}, paramLabel = "MODEL|ngram", description = "Draft model, or 'ngram'. Without it: plain decoding only.")
    String draft;

    @Option(names = "--prompts", paramLabel = "FILE", description = "One prompt per line (default: six verse openings).")
    Path prompts;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "64", description = "Tokens generated per prompt (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--draft-max", split = ",", defaultValue = "1,2,3,4,6,8",
            description = "Draft lengths to try (default: ${DEFAULT-VALUE}); with --parallel one length (default: " + PARALLEL_DRAFT_MAX + ").")
    List<Integer> draftMax;

    @Option(names = "--draft-p-min", defaultValue = "0", description = "p-min of the fixed-length runs (default: ${DEFAULT-VALUE}).")
    float draftPMin;

    @Option(names = "--no-adaptive", description = "Leave out the adaptive policy.")
    boolean noAdaptive;

    @Option(names = "--adaptive", description = "With --parallel: the speculative rounds choose their draft lengths for the batch "
            + "(the adaptive policy, up to --draft-max) instead of drafting --draft-max tokens every step.")
    boolean adaptive;

    @Option(names = "--repeats", defaultValue = "1", description = "Passes over the prompts per configuration; with --parallel, "
            + "plain/speculative round pairs per concurrency, medians reported (default: ${DEFAULT-VALUE}).")
    int repeats;

    @Option(names = "--json", description = "Print one JSON object {\"runs\":[...], \"pass_cost\":[...]}; "
            + "with --parallel {\"setup\":..., \"rows\":[...]}.")
    boolean json;

    @Option(names = "--plot", paramLabel = "PNG", description = "Draw speed-up and acceptance against draft length.")
    Path plot;

    @Option(names = "--chat-turns", paramLabel = "TOKENS", description = "Instead: time to first token of a conversation's second turn "
            + "with the prefix cache and without, one conversation per prompt, its first turn filled to TOKENS prompt tokens; "
            + "-n tokens per reply. Prints a Markdown table.")
    Integer chatTurns;

    @Option(names = "--parallel", split = ",", paramLabel = "P[,P...]", description = "Instead: concurrent requests through the engine, "
            + "the path 'tandem serve' runs. At each P, P requests at once (distinct prompts, -n tokens each), plain and speculative "
            + "rounds interleaved --repeats times; needs --draft. Prints a Markdown table: aggregate and per-request tok/s, forward passes, "
            + "speculative/plain. Fails if a speculative output differs from plain decoding.")
    List<Integer> parallel;

    @Option(names = "--out", paramLabel = "FILE", description = "With --parallel: also write the table (or the --json object) to FILE.")
    Path outFile;

    @Override
    public Integer call() throws IOException {
        if (maxTokens < 1) throw new UsageException("--max-tokens must be at least 1, got " + maxTokens);
        if (repeats < 1) throw new UsageException("--repeats must be at least 1, got " + repeats);
        if (!(draftPMin >= 0 && draftPMin <= 1)) throw new UsageException("--draft-p-min must be in [0, 1], got " + draftPMin);
        for (int k : draftMax) {
            if (k < 1 || k > DraftSettings.MAX_DRAFT) throw new UsageException("--draft-max values must be in [1, " + DraftSettings.MAX_DRAFT + "], got " + k);
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (parallel != null) return parallel(out, err);
        if (outFile != null) throw new UsageException("--out writes the --parallel table; the other benches print to standard output");
        if (adaptive) throw new UsageException("--adaptive goes with --parallel (the sequential bench runs the adaptive policy unless --no-adaptive)");
        if (chatTurns != null) return chatTurns(out, err);
        List<String> texts = promptTexts();
        boolean ngram = draft != null && "ngram".equalsIgnoreCase(draft);
        Path draftPath = draft == null || ngram ? null : ModelOptions.requireFileOrFolder(Path.of(draft));
        java.util.function.Consumer<String> progress = progress(err);
        Tandem.Builder builder = runtime.engineBuilder(model.model());
        try (ModelFile mainFile = ModelFile.open(model.model())) {
            Prompts p = prompts(mainFile, texts);
            forBench(builder, p.context(), 1);
            if (draftPath != null) builder.draft(draftPath);
            String backendName;
            SpeculativeBench.Report report;
            Plain plain;
            ReadBandwidth.Limit limit;
            try (Engine engine = builder.build()) {
                backendName = engine.backend().name();
                if (engine.backend().fallbackReason() != null) progress.accept(engine.backend().fallbackReason());
                if (draft == null) {
                    plain = plainOnly(engine, mainFile, p.tokens(), progress);
                    report = null;
                    limit = null;
                } else {
                    DraftSettings drafting = ngram ? DraftSettings.ngram() : DraftSettings.model(null);
                    ReadBandwidth.Result before = readBandwidth(mainFile, backendName, progress);
                    report = new SpeculativeBench(engine, drafting, progress).run(new SpeculativeBench.Settings(p.tokens(), maxTokens,
                            draftMax, !noAdaptive, draftPMin, repeats, SamplingSettings.greedy()));
                    limit = limit(mainFile, before, readBandwidth(mainFile, backendName, progress));
                    plain = null;
                }
            }
            // The pass costs, once the engine has freed the device: a kernel measurement on the main model alone.
            double[] cost = passCost(backendName, p.tokens().getFirst(), draft == null ? 5 : 15);
            if (plain != null) {
                plain.json().put("pass_cost", cost);
                out.println(json ? Json.write(plain.json()) : plain.text() + passCostLine(cost));
                return 0;
            }
            report = report.withPassCost(cost);
            double plainRate = report.plainTokensPerSecond();
            if (json) {
                Map<String, Object> m = new LinkedHashMap<>(report.toMap());
                m.put("threads", runtime.threads());
                m.put("plain_tokens_per_second", plainRate);
                if (limit != null) m.putAll(limit.toMap(plainRate));
                out.println(Json.write(m));
            } else {
                out.print(report.table());
                int configurations = report.runs().size();
                out.println(String.format("plain decoding: %.2f tok/s (the plain runs of %d configuration%s, %d prompts x %d tokens each, %d threads) %s",
                        plainRate, configurations, configurations == 1 ? "" : "s", p.tokens().size() * repeats, maxTokens, runtime.threads(),
                        statement(limit, plainRate, backendName)));
                if (limit != null) out.println(limit.detail());
            }
            if (plot != null) {
                BenchPlot.writePng(report, mainFile.path().getFileName() + " + " + draft, plot);
                if (!json) err.println("plot: " + plot);
            }
        }
        return 0;
    }

    /** The prompts' token ids and a context that holds the longest of them and its tokens (--ctx, if given, instead). */
    private record Prompts(List<int[]> tokens, int context) {}

    private Prompts prompts(ModelFile file, List<String> texts) {
        Tokenizer tokenizer = Tokenizers.forModel(file);
        List<int[]> tokens = new ArrayList<>();
        for (String text : texts) tokens.add(tokenizer.encode(text, true, true));
        int longest = tokens.stream().mapToInt(t -> t.length).max().orElseThrow();
        int context = runtime.context != null ? runtime.context : Math.min(file.config().contextLength(), longest + maxTokens);
        checkFits(longest, maxTokens, context);
        return new Prompts(tokens, context);
    }

    /**
     * The bench's engine: {@code parallel} batch slots of {@code context} positions, no queue (a request that found no
     * slot fails the run instead of running late and alone) and no prefix cache (each run must prefill its prompt, not
     * find an earlier run's blocks).
     */
    private static void forBench(Tandem.Builder builder, int context, int parallel) {
        builder.contextLength(context).parallel(parallel).maxQueue(0).prefixCache(false);
    }

    /** Generation that must run to {@code maxTokens} (benchmarks): prompt and tokens must fit the context. */
    static void checkFits(int promptTokens, int maxTokens, int context) {
        if ((long) promptTokens + maxTokens > context) {
            throw new UserInputException("a prompt of " + promptTokens + " tokens and " + maxTokens + " new tokens need "
                    + ((long) promptTokens + maxTokens) + " positions but the context holds " + context);
        }
    }

    /** {@code --chat-turns}: the second turn's time to first token with and without the prefix cache, plain greedy decoding. */
    private int chatTurns(PrintWriter out, PrintWriter err) throws IOException {
        if (chatTurns < 1) throw new UsageException("--chat-turns must be at least 1 token, got " + chatTurns);
        if (draft != null) throw new UsageException("--chat-turns times plain prefill; leave out --draft");
        runtime.check();
        List<String> texts = promptTexts();
        if (texts.size() < 2) throw new UsageException("--chat-turns needs at least two prompts (the next one is the second turn's message)");
        java.util.function.Function<Boolean, Engine> engines = cache -> {
            Tandem.Builder b = runtime.engineBuilder(model.model()).parallel(1).prefixCache(cache);
            // Room for the conversation (the message is a prompt line), not the model's whole trained context.
            return b.contextLength(runtime.context != null ? runtime.context : chatTurns + 2 * maxTokens + 256).build();
        };
        List<ChatTurnBench.Row> rows = new ChatTurnBench(progress(err))
                .run(engines, texts, chatTurns, maxTokens);
        out.print(ChatTurnBench.table(rows));
        out.flush();
        return 0;
    }

    /**
     * {@code --parallel}: plain and speculative throughput of concurrent requests through the engine. The engine gets a
     * batch slot for each request of the largest concurrency, and a context as long as the longest prompt and its tokens
     * (the model's whole trained context for every slot would not fit the memory of a 3B model's K/V).
     */
    private int parallel(PrintWriter stdout, PrintWriter err) throws IOException {
        for (int p : parallel) if (p < 1) throw new UsageException("--parallel values must be at least 1, got " + p);
        if (draft == null) {
            throw new UsageException("--parallel compares plain with speculative decoding: give the draft with --draft MODEL (or --draft ngram)");
        }
        if (chatTurns != null) throw new UsageException("--chat-turns and --parallel exclude each other");
        if (plot != null) throw new UsageException("--plot draws the draft lengths of the sequential bench; not with --parallel");
        boolean draftMaxGiven = spec.commandLine().getParseResult().hasMatchedOption("--draft-max");
        if (draftMaxGiven && draftMax.size() != 1) throw new UsageException("--parallel takes one --draft-max, got " + draftMax);
        int k = draftMaxGiven ? draftMax.getFirst() : PARALLEL_DRAFT_MAX;
        Tandem.Builder builder = runtime.engineBuilder(model.model());
        if (outFile != null) checkOut(outFile);
        int largest = parallel.stream().mapToInt(Integer::intValue).max().orElseThrow();
        List<String> texts = promptTexts();
        if (largest > texts.size()) {
            throw new UsageException("--parallel " + largest + " needs " + largest + " distinct prompts but there are " + texts.size()
                    + (prompts == null ? " built in" : " in " + prompts) + "; give more with --prompts FILE, one a line");
        }
        boolean ngram = "ngram".equalsIgnoreCase(draft);
        Path draftPath = ngram ? null : ModelOptions.requireFileOrFolder(Path.of(draft));
        Prompts p;
        try (ModelFile file = ModelFile.open(model.model())) {
            p = prompts(file, texts.subList(0, largest));
        }
        List<int[]> tokens = p.tokens();
        forBench(builder, p.context(), largest);
        if (draftPath != null) builder.draft(draftPath);
        DraftSettings drafting = (ngram ? DraftSettings.ngram() : DraftSettings.model(null)).withLimits(k, 0, draftPMin).withAdaptive(adaptive);
        java.util.function.Consumer<String> progress = progress(err);
        ParallelBench.Report report;
        try (Engine engine = builder.build()) {
            if (engine.backend().fallbackReason() != null && !json) progress.accept(engine.backend().fallbackReason());
            report = new ParallelBench(engine, progress).run(new ParallelBench.Settings(tokens, parallel, maxTokens, drafting, repeats));
        }
        String text = json ? Json.write(report.toMap()) + "\n" : report.markdown();
        stdout.print(text);
        stdout.flush();
        if (outFile != null) Files.writeString(outFile, text);
        return 0;
    }

    /** Progress lines on {@code err} as they come; none with {@code --json}, whose output is one object. */
    private java.util.function.Consumer<String> progress(PrintWriter err) {
        return json ? line -> { } : line -> {
            err.println(line);
            err.flush();
        };
    }

    /** Refuses an {@code --out} that cannot be written before the run, which may take long, rather than after it. */
    private static void checkOut(Path out) {
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) throw new UserInputException("--out: folder " + parent + " does not exist");
        if (Files.isDirectory(out)) throw new UserInputException("--out: " + out + " is a folder");
    }

    private List<String> promptTexts() throws IOException {
        if (prompts == null) return parallel != null ? VERSE_OPENINGS : DEFAULT_PROMPTS;
        if (!Files.isRegularFile(prompts)) throw new UserInputException("--prompts: no such file " + prompts);
        List<String> lines = Files.readAllLines(prompts).stream().filter(l -> !l.isBlank()).toList();
        if (lines.isEmpty()) throw new UserInputException("--prompts: " + prompts + " has no prompt");
        return lines;
    }

    /** The read bandwidth of the main model's weights on the run's threads, on the CPU backend; null on others. */
    private ReadBandwidth.Result readBandwidth(ModelFile mainFile, String backendName, java.util.function.Consumer<String> progress) {
        if (!backendName.equals("cpu")) return null;
        ReadBandwidth.Result r = ReadBandwidth.measure(mainFile.tensors(), runtime.threads());
        progress.accept(String.format("read bandwidth: %.1f GB/s (%d threads)", r.gbPerSecond(), r.threads()));
        return r;
    }

    private static ReadBandwidth.Limit limit(ModelFile mainFile, ReadBandwidth.Result before, ReadBandwidth.Result after) {
        return before == null ? null : new ReadBandwidth.Limit(before, after, ReadBandwidth.bytesPerToken(mainFile));
    }

    private static String statement(ReadBandwidth.Limit limit, double tokensPerSecond, String backendName) {
        return limit != null ? limit.statement(tokensPerSecond)
                : "(no read-bandwidth limit: it is measured on the cpu backend, this ran on " + backendName + ")";
    }

    /**
     * {@link PassCostProbe} on the main model alone, loaded on the backend the engine ran on: the (k+1)-row pass over
     * the one-row pass, k = 1..8, {@code samples} of each.
     */
    private double[] passCost(String backendName, int[] prompt, int samples) {
        try (Session s = Session.open(model.model(), backendName, runtime)) {
            return PassCostProbe.relativeCosts(s.main, prompt, 8, samples);
        }
    }

    private static String passCostLine(double[] cost) {
        StringBuilder sb = new StringBuilder("cost of a (k+1)-row pass / a 1-row pass:");
        for (int k = 1; k <= cost.length; k++) sb.append(String.format("  k=%d %.2f", k, cost[k - 1]));
        return sb.toString();
    }

    /**
     * Plain decoding tok/s over the prompts through the engine (after a warm-up), between two read-bandwidth
     * measurements.
     */
    private Plain plainOnly(Engine engine, ModelFile mainFile, List<int[]> tokens, java.util.function.Consumer<String> progress) {
        java.util.function.Function<int[], GenerationStats> run = prompt -> engine.generateBlocking(GenerationRequest.builder()
                .promptTokens(prompt).maxTokens(maxTokens).ignoreEndOfGeneration(true).build()).stats();
        long start = System.nanoTime();     // warm-up, as SpeculativeBench's: at least one run and 3 s
        do run.apply(tokens.getFirst()); while (System.nanoTime() - start < 3_000_000_000L);
        String backendName = engine.backend().name();
        ReadBandwidth.Result before = readBandwidth(mainFile, backendName, progress);
        long generated = 0;
        double millis = 0;
        List<Double> perPrompt = new ArrayList<>();
        for (int rep = 0; rep < repeats; rep++) {
            for (int[] p : tokens) {
                GenerationStats st = run.apply(p);
                generated += st.completionTokens();
                millis += st.generationMillis();
                perPrompt.add(st.predictedPerSecond());
                progress.accept(String.format("prompt of %d tokens: %.2f tok/s", p.length, st.predictedPerSecond()));
            }
        }
        ReadBandwidth.Limit limit = limit(mainFile, before, readBandwidth(mainFile, backendName, progress));
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", mainFile.path().toString());
        m.put("threads", runtime.threads());
        m.put("prompts", tokens.size() * repeats);
        m.put("tokens_per_prompt", maxTokens);
        double rate = generated * 1000.0 / millis;
        m.put("plain_tokens_per_second", rate);
        m.put("per_prompt_tokens_per_second", perPrompt);
        if (limit != null) m.putAll(limit.toMap(rate));
        return new Plain(m, plainTable(m, limit, backendName));
    }

    /** The plain-only bench's JSON object (pass costs added later) and its text. */
    private record Plain(Map<String, Object> json, String text) {}

    private static String plainTable(Map<String, Object> m, ReadBandwidth.Limit limit, String backendName) {
        StringBuilder sb = new StringBuilder();
        double rate = (Double) m.get("plain_tokens_per_second");
        sb.append(String.format("plain decoding: %.2f tok/s (%s prompts x %s tokens, %s threads) %s%n",
                rate, m.get("prompts"), m.get("tokens_per_prompt"), m.get("threads"), statement(limit, rate, backendName)));
        if (limit != null) sb.append(limit.detail()).append('\n');
        return sb.toString();
    }
}
