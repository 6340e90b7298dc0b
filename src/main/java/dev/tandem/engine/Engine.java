package dev.tandem.engine;

import dev.tandem.decode.DraftPolicy;
import dev.tandem.decode.Drafter;
import dev.tandem.decode.IncompatibleDraftException;
import dev.tandem.decode.ModelDrafter;
import dev.tandem.decode.NgramDrafter;
import dev.tandem.decode.TokenChoice;
import dev.tandem.decode.VocabularyCheck;
import dev.tandem.model.ModelConfig;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.KvCache;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.PagedKvCache;
import dev.tandem.tokenizer.ChatMessage;
import dev.tandem.tokenizer.ChatTemplate;
import dev.tandem.tokenizer.ChatTemplateException;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;

import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Loaded models and the scheduler that runs requests on them. Thread-safe: any number of threads may call
 * {@link #generate} at once; their sequences are decoded together. Close it to free the models, after the
 * generations in flight have finished or the drain timeout has passed ({@link #drain}).
 */
public final class Engine implements AutoCloseable {
    static final int BLOCK_SIZE = 16;
    /** The draft name of prompt lookup. */
    static final String NGRAM = "ngram";
    /** While adaptive speculation is off, one draft is tried every this many plain steps. */
    static final int ADAPTIVE_PROBE_INTERVAL = 32;

    private final List<Loaded> models;
    private final Loaded main;
    private final Map<String, Loaded> drafts = new LinkedHashMap<>();
    /** A drafter per loaded draft model (writing into that model's one K/V storage over the shared pool), and "ngram". */
    private final Map<String, Drafter> drafters = new LinkedHashMap<>();
    private final Tokenizer tokenizer;
    private final Optional<ChatTemplate> chatTemplate;
    private final int contextLength;
    private final PagedKvCache tables;
    private final List<KvCache> caches = new ArrayList<>();
    private final Scheduler scheduler;
    private final ExecutorService delivery = Executors.newVirtualThreadPerTaskExecutor();
    private final Backend ownedBackend;
    private final BackendInfo backend;
    private final Duration drainTimeout;

    /**
     * The backend the models run on: its name ("cpu", "cuda", "cuda-host"), one line about it (the GPU, or the CPU
     * threads), and why {@code auto} fell back to the CPU (null when it did not, or when a backend was named).
     */
    public record BackendInfo(String name, String description, String fallbackReason) {}

    /** A model file, its loaded form and its info. */
    private record Loaded(ModelInfo info, ModelFile file, LoadedModel model) {}

    /** What loading made, closed together when a later step fails (or when {@code auto} retries on the CPU). */
    private record Loadout(List<Loaded> loaded, Tokenizer tokenizer, int contextLength, PagedKvCache tables, List<KvCache> caches) {
        void close() {
            for (KvCache c : caches) c.close();
            for (Loaded l : loaded) Engine.close(l);
        }
    }

    private Engine(Tandem.Builder b) {
        this.drainTimeout = b.drainTimeout;
        if (b.main == null) throw new IllegalArgumentException("no model given: call model(path) on the builder");
        if (b.threads < 1) throw new IllegalArgumentException("threads must be at least 1, got " + b.threads);
        if (b.parallel < 1) throw new IllegalArgumentException("parallel must be at least 1, got " + b.parallel);
        if (b.maxQueue < 0) throw new IllegalArgumentException("the queue size must be at least 0, got " + b.maxQueue);
        LoadOptions options = LoadOptions.defaults().withThreads(b.threads).withKvType(b.kvType);
        Loadout out;
        if (b.backend != null) {
            out = loadAll(b.backend, b, options);
            this.ownedBackend = null;
            this.backend = new BackendInfo(b.backend.name(), Backends.describe(b.backend, b.threads), null);
        } else {
            Backends.Loaded<Loadout> l = Backends.load(b.backendName == null ? "auto" : b.backendName, backend -> loadAll(backend, b, options));
            out = l.value();
            this.ownedBackend = l.backend();
            this.backend = new BackendInfo(l.backend().name(), Backends.describe(l.backend(), b.threads), l.fallbackReason());
        }
        try {
            this.main = out.loaded().get(0);
            this.tokenizer = out.tokenizer();
            this.contextLength = out.contextLength();
            this.tables = out.tables();
            this.caches.addAll(out.caches());
            for (int i = 1; i < out.loaded().size(); i++) drafts.put(out.loaded().get(i).info.id(), out.loaded().get(i));
            for (int i = 1; i < out.loaded().size(); i++) drafters.put(out.loaded().get(i).info.id(), new ModelDrafter(out.loaded().get(i).model, caches.get(i)));
            drafters.put(NGRAM, new NgramDrafter());
            this.chatTemplate = tokenizer.chatTemplate().map(src -> new ChatTemplate(src,
                    tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : "",
                    tokenizer.eos() >= 0 ? tokenizer.tokenText(tokenizer.eos()) : ""));
            this.models = List.copyOf(out.loaded());
            boolean draftAhead = b.draftAhead != null ? b.draftAhead : this.backend.name().startsWith("cuda");
            this.scheduler = new Scheduler(main.model, caches.get(0), tokenizer, b.parallel, b.maxQueue, draftAhead);
        } catch (RuntimeException e) {
            out.close();
            if (ownedBackend != null) ownedBackend.close();
            throw e;
        }
    }

    /**
     * The main model, its drafts and their K/V caches on {@code backend}; closes what it made when a step fails.
     * Models are told the K/V positions they will hold, so that a GPU that is too small says so before uploading.
     */
    private static Loadout loadAll(Backend backend, Tandem.Builder b, LoadOptions options) {
        List<Loaded> loaded = new ArrayList<>();
        List<KvCache> caches = new ArrayList<>();
        try {
            Loaded m = load(backend, b.main, ModelInfo.Role.MAIN, b.onModelOpened, config -> options.withKvPositions(
                    b.kvMemory > 0 ? 0 : (long) b.parallel * (b.contextLength > 0 ? b.contextLength : bounded(config.contextLength(), b))));
            loaded.add(m);
            Tokenizer tokenizer = Tokenizers.forModel(m.file);
            int trained = m.info.contextLength();
            if (b.contextLength < 0 || b.contextLength > trained) {
                throw new IllegalArgumentException("context length " + b.contextLength + " is outside 1.." + trained + " (the model's trained context)");
            }
            int contextLength = b.contextLength == 0 ? bounded(trained, b) : b.contextLength;
            LoadOptions draftOptions = options.withKvPositions(b.kvMemory > 0 ? 0 : (long) b.parallel * contextLength).asDraft();
            for (Tandem.ModelSource d : b.drafts) {
                Loaded draft = load(backend, d, ModelInfo.Role.DRAFT, b.onModelOpened, config -> draftOptions);
                loaded.add(draft);
                for (Loaded other : loaded.subList(0, loaded.size() - 1)) {
                    if (other.info.id().equals(draft.info.id())) {
                        throw new IllegalArgumentException("two models are named '" + draft.info.id() + "'; give the draft another id");
                    }
                }
                checkVocabulary(tokenizer, m, draft);
            }
            long bytesPerPosition = 0;
            for (Loaded l : loaded) bytesPerPosition += l.model.kvBytesPerPosition();
            String prefixIdentity = b.prefixCache ? prefixIdentity(loaded, options) : null;
            PagedKvCache tables = b.kvMemory > 0
                    ? PagedKvCache.forBudget(b.kvMemory, bytesPerPosition, BLOCK_SIZE, prefixIdentity)
                    : new PagedKvCache(BLOCK_SIZE, b.parallel * ((contextLength + BLOCK_SIZE - 1) / BLOCK_SIZE), prefixIdentity);
            if (backend.name().equals("cpu")) checkHeapHolds((long) tables.totalBlocks() * BLOCK_SIZE * bytesPerPosition, b);
            for (Loaded l : loaded) caches.add(l.model.createKvCache(tables));
            return new Loadout(loaded, tokenizer, contextLength, tables, caches);
        } catch (RuntimeException e) {
            new Loadout(loaded, null, 0, null, caches).close();
            throw e;
        }
    }

    static Engine open(Tandem.Builder b) { return new Engine(b); }

    /** The trained context {@code trained}, within {@link Tandem.Builder#contextLengthAtMost}'s bound when there is one. */
    private static int bounded(int trained, Tandem.Builder b) {
        return b.contextBound > 0 ? Math.min(trained, b.contextBound) : trained;
    }

    /**
     * What a cached block's values depend on besides its tokens: each model (file and size, in storage-bit order)
     * and the K/V type. Null, turning prefix caching off, when there are more models than storage bits.
     */
    private static String prefixIdentity(List<Loaded> loaded, LoadOptions options) {
        if (loaded.size() > 31) return null;
        StringBuilder id = new StringBuilder("kv=").append(options.kvType());
        for (Loaded l : loaded) id.append(';').append(l.info.path().toAbsolutePath().normalize()).append(':').append(l.info.weightBytes());
        return id.toString();
    }

    /**
     * The CPU backend keeps the K/V cache in Java arrays: a pool larger than the heap has free would end in an
     * OutOfMemoryError half way through loading, so it is refused first, naming both numbers.
     */
    private static void checkHeapHolds(long kvBytes, Tandem.Builder b) {
        Runtime rt = Runtime.getRuntime();
        long free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        if (kvBytes > free) {
            System.gc();       // what looked used may be garbage: count again before refusing
            free = rt.maxMemory() - (rt.totalMemory() - rt.freeMemory());
        }
        if (kvBytes > free) {
            throw new IllegalArgumentException(String.format(java.util.Locale.ROOT,
                    "the K/V cache needs %.1f GiB (%s) but the Java heap has %.1f GiB free; lower %s or raise the heap (-Xmx)",
                    kvBytes / (double) (1L << 30), b.kvMemory > 0 ? "the K/V memory asked for" : b.parallel + " sequences of the context",
                    free / (double) (1L << 30), b.kvMemory > 0 ? "the K/V memory (--kv-memory)" : "the context (--ctx) or parallel sequences (--parallel)"));
        }
    }

    /** Opens one model, tells {@code opened}, and loads it with the options {@code options} gives for its configuration. */
    private static Loaded load(Backend backend, Tandem.ModelSource source, ModelInfo.Role role, Consumer<ModelFile> opened,
                               Function<ModelConfig, LoadOptions> options) {
        ModelFile file = ModelFile.open(source.path());
        try {
            opened.accept(file);
            LoadedModel model = backend.load(file, options.apply(file.config()));
            String id = source.id() != null ? source.id() : idOf(source.path());
            ModelInfo info = new ModelInfo(id, role, source.path(), model.config().contextLength(),
                    model.config().vocabularySize(), file.weightBytes());
            return new Loaded(info, file, model);
        } catch (RuntimeException e) {
            file.close();
            throw e;
        }
    }

    /** The file name without its extension ("kjv-main-q8_0" for kjv-main-q8_0.gguf; a folder's name as is). */
    static String idOf(Path path) {
        String name = path.toAbsolutePath().normalize().getFileName().toString();
        int dot = name.lastIndexOf('.');
        return dot > 0 && !path.toFile().isDirectory() ? name.substring(0, dot) : name;
    }

    /** decode's rule: a draft must share the main model's vocabulary; the error names the draft and the first difference. */
    private static void checkVocabulary(Tokenizer tokenizer, Loaded main, Loaded draft) {
        try {
            VocabularyCheck.requireCompatible(tokenizer, Tokenizers.forModel(draft.file));
        } catch (IncompatibleDraftException e) {
            throw new IncompatibleDraftException("draft '" + draft.info.id() + "' cannot serve '" + main.info.id() + "': " + e.getMessage());
        }
    }

    /** The main model first, then its drafts. */
    public List<ModelInfo> models() {
        List<ModelInfo> out = new ArrayList<>();
        for (Loaded l : models) out.add(l.info);
        return out;
    }

    public ModelInfo mainModel() { return main.info; }

    /** Where the models run, and why there when {@code auto} fell back. */
    public BackendInfo backend() { return backend; }

    public Tokenizer tokenizer() { return tokenizer; }

    /** Positions per sequence (prompt and generated tokens). */
    public int contextLength() { return contextLength; }

    public Optional<ChatTemplate> chatTemplate() { return chatTemplate; }

    public EngineStats stats() { return scheduler.stats(); }

    /**
     * Forward passes each loaded model has run since the engine started, by model id (main model first): the main
     * model's prefills and verifications, a draft model's prefills and draft passes for all its sequences. With
     * batching at work a draft model runs far fewer passes than the tokens it drafts.
     */
    public Map<String, Long> forwardPasses() {
        Map<String, Long> passes = new LinkedHashMap<>();
        passes.put(main.info.id(), scheduler.stats().forwardPasses());
        for (Map.Entry<String, Drafter> d : drafters.entrySet()) {
            if (d.getValue() instanceof ModelDrafter m) passes.put(d.getKey(), m.passes());
        }
        return passes;
    }

    /**
     * Why the engine can no longer generate (an error that left it unusable, such as an {@link InternalError} or
     * the scheduler's thread ending), or empty while it can. A failure of one request's work is not one: that
     * request fails alone.
     */
    public Optional<String> failure() { return Optional.ofNullable(scheduler.failure()); }

    /**
     * The prompt text the model's chat template makes of {@code messages}, ending where the reply starts. A model
     * without a template, or a template that fails or refuses the messages, is an {@link InvalidRequestException}
     * on "messages" with code "chat_template_error", like every other bad request.
     */
    public String renderChat(List<ChatMessage> messages) {
        ChatTemplate t = chatTemplate.orElseThrow(() -> new InvalidRequestException(
                "model '" + main.info.id() + "' has no chat template; send a plain prompt to /v1/completions instead",
                "messages", CHAT_TEMPLATE_ERROR));
        try {
            return t.render(messages, true);
        } catch (ChatTemplateException e) {
            throw new InvalidRequestException(e.getMessage(), "messages", CHAT_TEMPLATE_ERROR, e);
        }
    }

    private static final String CHAT_TEMPLATE_ERROR = "chat_template_error";

    /** The prompt's token ids, as a request's prompt would be tokenised. */
    public int[] promptTokens(GenerationRequest request) {
        if (request.promptTokens() != null) {
            for (int t : request.promptTokens()) {
                if (t < 0 || t >= tokenizer.vocabularySize()) {
                    throw new InvalidRequestException("prompt token " + t + " is outside the vocabulary 0.." + (tokenizer.vocabularySize() - 1), "prompt");
                }
            }
            return request.promptTokens();
        }
        if (request.prompt() != null) return tokenizer.encode(request.prompt(), true, true);
        String text = renderChat(request.messages());
        // Templates that write bos_token themselves (Llama 3) must not get a second BOS from the tokenizer.
        String bos = tokenizer.bos() >= 0 ? tokenizer.tokenText(tokenizer.bos()) : null;
        boolean hasBos = bos != null && !bos.isEmpty() && text.startsWith(bos);
        return tokenizer.encode(text, !hasBos, true);
    }

    /**
     * Starts a generation. Bad requests fail here, before anything runs: {@link InvalidRequestException} (and
     * its {@link PromptTooLongException} and {@link UnknownModelException}; a chat template's failure too), and
     * {@link EngineOverloadedException} when the queue is full.
     */
    public Generation generate(GenerationRequest request) {
        return start(request, true);
    }

    /** {@link #generate} and wait for the output. */
    public GenerationOutput generateBlocking(GenerationRequest request) {
        return start(request, false).await();
    }

    private Generation start(GenerationRequest request, boolean stream) {
        if (request.model() != null && !request.model().equals(main.info.id())) {
            if (drafts.containsKey(request.model())) {
                throw new InvalidRequestException("'" + request.model() + "' is loaded as a draft model; use it as draft_model with model '"
                        + main.info.id() + "'", "model", "model_not_found");
            }
            throw new UnknownModelException("model", request.model(), "model", List.of(main.info.id()));
        }
        String draftName = draftName(request.draft());
        if (request.maxTokens() > contextLength) {
            throw new InvalidRequestException("max_tokens is " + request.maxTokens() + " but the context holds only " + contextLength + " tokens", "max_tokens");
        }
        int[] prompt = promptTokens(request);
        String promptParam = request.messages() != null ? "messages" : "prompt";
        if (prompt.length >= contextLength) throw new PromptTooLongException(prompt.length, contextLength, promptParam);
        int room = contextLength - prompt.length;
        int maxTokens = request.maxTokens() == 0 ? room : Math.min(request.maxTokens(), room);
        int blocks = scheduler.blocksFor(prompt.length + maxTokens);
        if (blocks > scheduler.totalBlocks()) {
            throw new InvalidRequestException("this request needs " + blocks + " K/V blocks of " + BLOCK_SIZE + " positions (" + prompt.length
                    + " prompt + " + maxTokens + " new tokens) but the cache holds " + scheduler.totalBlocks()
                    + "; lower max_tokens or start the server with more --kv-memory", "max_tokens", "kv_cache_too_small");
        }
        Instant deadline = request.deadline();
        long deadlineNanos = deadline == null ? 0 : System.nanoTime() + java.time.Duration.between(Instant.now(), deadline).toNanos();
        Generation generation = new Generation(delivery, stream);
        Sequence s = new Sequence(generation, prompt, maxTokens, deadlineNanos, deadline != null, request.ignoreEndOfGeneration(),
                new TokenChoice(request.sampling().samplerSettings(), main.model.config().vocabularySize()), tokenizer.streamDecoder(),
                new StopStrings(request.stop()), blocks, speculation(draftName, request.draft()));
        scheduler.submit(s);
        return generation;
    }

    private Sequence.Speculation speculation(String draftName, DraftSettings d) {
        if (draftName == null) return null;
        DraftPolicy policy = d.adaptive()
                ? new DraftPolicy.Adaptive(d.draftMax(), (float) d.draftPMin(), ADAPTIVE_PROBE_INTERVAL)
                : new DraftPolicy.Fixed(d.draftMax(), d.draftMin(), (float) d.draftPMin());
        Loaded draft = drafts.get(draftName);
        int storage = draft == null ? 0 : 1 << models.indexOf(draft);
        return new Sequence.Speculation(draftName, drafters.get(draftName), policy, storage);
    }

    /** The draft a request asks for, checked; null without speculation. */
    private String draftName(DraftSettings d) {
        return switch (d.mode()) {
            case OFF -> null;
            case NGRAM -> NGRAM;
            case MODEL -> {
                if (d.draftModel() == null) {
                    if (drafts.isEmpty()) throw new InvalidRequestException("no draft model is loaded", "draft_model", "model_not_found");
                    yield drafts.keySet().iterator().next();
                }
                if (!drafts.containsKey(d.draftModel())) {
                    if (d.draftModel().equals(NGRAM)) yield NGRAM;
                    if (d.draftModel().equals(main.info.id())) {
                        throw new InvalidRequestException("'" + d.draftModel() + "' is the main model; a draft must be a smaller model "
                                + "loaded as a draft (" + String.join(", ", drafts.keySet()) + ") or \"" + NGRAM + "\"", "draft_model");
                    }
                    throw new UnknownModelException("draft model", d.draftModel(), "draft_model", List.copyOf(drafts.keySet()));
                }
                yield d.draftModel();
            }
        };
    }

    /**
     * Shuts down gracefully: from now on {@link #generate} refuses with {@link EngineDrainingException}, while the
     * generations already taken (running or queued) go on for up to {@code timeout}; those still running then end
     * with {@link FinishReason#SHUTDOWN}. Returns once none is left. A second call, from another thread say, may
     * shorten the wait ({@code Duration.ZERO}: end them now), never lengthen it. The models stay loaded until
     * {@link #close()}.
     */
    public void drain(Duration timeout) {
        long nanos = (timeout.compareTo(LONGEST_DRAIN) > 0 ? LONGEST_DRAIN : timeout).toNanos();
        scheduler.drain(System.nanoTime() + nanos);
        try {
            // Past the deadline the loop needs at most one pass (or one 200 ms poll) to end what is left.
            scheduler.awaitDrained(nanos / 1_000_000 + DRAIN_GRACE_MILLIS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** How long past a drain's deadline {@link #drain} waits for the last pass to end. */
    private static final long DRAIN_GRACE_MILLIS = 10_000;
    /** Longer drains are cut to this, which keeps the nanosecond deadline from overflowing. */
    private static final Duration LONGEST_DRAIN = Duration.ofDays(365);

    /** Whether {@link #drain} (or {@link #close()}) has begun: no new requests are taken. */
    public boolean isDraining() { return scheduler.isDraining(); }

    /**
     * Runs a short generation (8 prompt tokens, 2 generated; fewer in a tiny context) plainly and with each loaded
     * draft model, so that the first real request does not pay for compiling the decode paths or loading kernels.
     * It goes through the scheduler like any request and counts in {@link #stats()}.
     */
    public void warmUp() {
        if (contextLength < 2) return;        // no request fits such a context
        int[] prompt = new int[Math.max(1, Math.min(8, contextLength - 2))];     // prompt + 2 within the context
        java.util.Arrays.fill(prompt, Math.max(0, tokenizer.bos()));
        int maxTokens = Math.min(2, contextLength - prompt.length);
        List<DraftSettings> modes = new ArrayList<>();
        modes.add(DraftSettings.off());
        for (String d : drafts.keySet()) modes.add(DraftSettings.model(d).withLimits(4, 0, 0));     // p-min 0: it drafts
        for (DraftSettings mode : modes) {
            generateBlocking(GenerationRequest.builder().promptTokens(prompt).maxTokens(maxTokens).ignoreEndOfGeneration(true)
                    .sampling(SamplingSettings.greedy()).draft(mode).build());
        }
    }

    /** {@link #drain} with the builder's drain timeout (30 s by default), then frees the models. */
    @Override
    public void close() {
        drain(drainTimeout);
        scheduler.close();
        delivery.close();
        for (KvCache c : caches) c.close();
        for (Loaded l : models) close(l);
        if (ownedBackend != null) ownedBackend.close();
    }

    private static void close(Loaded l) {
        l.model.close();
        l.file.close();
    }
}
