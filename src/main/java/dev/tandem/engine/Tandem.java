package dev.tandem.engine;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.runtime.KvType;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * Where embedding starts:
 * <pre>{@code
 * try (Engine engine = Tandem.builder().model(Path.of("main.gguf")).draft(Path.of("draft.gguf")).build()) {
 *     GenerationOutput out = engine.generateBlocking(GenerationRequest.builder().prompt("In the beginning").maxTokens(32).build());
 * }
 * }</pre>
 */
public final class Tandem {
    private Tandem() {}

    public static Builder builder() { return new Builder(); }

    /** A model to load: its id (null: the file name without extension) and path. */
    record ModelSource(String id, Path path) {}

    public static final class Builder {
        ModelSource main;
        final List<ModelSource> drafts = new ArrayList<>();
        String backendName = "auto";
        Backend backend;
        int contextLength;
        /** {@link #contextLengthAtMost}'s bound; 0: none. */
        int contextBound;
        long kvMemory;
        int threads = Runtime.getRuntime().availableProcessors();
        int parallel = 4;
        int maxQueue = 64;
        KvType kvType = KvType.F32;
        Duration drainTimeout = Duration.ofSeconds(30);
        boolean prefixCache = true;
        Boolean draftAhead;
        Consumer<ModelFile> onModelOpened = file -> { };

        /** The main model: a GGUF file or a Hugging Face folder; its id is the file name without extension. */
        public Builder model(Path path) { return model(null, path); }

        public Builder model(String id, Path path) { this.main = new ModelSource(id, path); return this; }

        /** A draft model for the main model; several may be added, requests choose by id. */
        public Builder draft(Path path) { return draft(null, path); }

        public Builder draft(String id, Path path) { drafts.add(new ModelSource(id, path)); return this; }

        /** "auto" or "cpu" ("cuda" and "cuda-host" where the build has them). */
        public Builder backend(String name) { this.backendName = name; this.backend = null; return this; }

        /** A backend instance the caller owns (the engine does not close it). */
        public Builder backend(Backend b) { this.backend = b; return this; }

        /** Positions per sequence; 0 (default) is the main model's trained context. */
        public Builder contextLength(int n) { this.contextLength = n; this.contextBound = 0; return this; }

        /**
         * Positions per sequence: {@code n}, or the main model's trained context where that is shorter (where
         * {@link #contextLength} would refuse {@code n}); for a default such as a command line's 8192.
         */
        public Builder contextLengthAtMost(int n) {
            if (n < 1) throw new IllegalArgumentException("the context length must be at least 1, got " + n);
            this.contextBound = n;
            this.contextLength = 0;
            return this;
        }

        /** Bytes for the K/V cache of all sequences and models; 0 (default) holds {@code parallel} full contexts. */
        public Builder kvMemory(long bytes) { this.kvMemory = bytes; return this; }

        public Builder kvType(KvType t) { this.kvType = t; return this; }

        /**
         * Whether requests share the K/V of prompt prefixes the cache already holds (on by default): a prompt that
         * starts with cached blocks prefills only the rest. Outputs are the same either way.
         */
        public Builder prefixCache(boolean on) { this.prefixCache = on; return this; }

        /**
         * Whether draft models draft ahead: while the main model verifies a step's drafts, the draft model drafts the
         * next step's (assuming acceptance) for all sequences, to be used where the guess comes true. It pays where
         * the two models run at once (CUDA streams), so by default it is on for CUDA backends and off on the CPU, where
         * the passes run one after the other and a wrong guess is work lost. Outputs are the same either way (greedy;
         * sampled ones keep their distribution).
         */
        public Builder draftAhead(boolean on) { this.draftAhead = on; return this; }

        /**
         * Called with each model file once it is opened, before its weights go to the backend (main model first, then
         * its drafts; again for each when {@code auto} falls back to the CPU): a command line reads the weights in
         * there with a progress bar, so that loading does not hide in the first token's latency.
         */
        public Builder onModelOpened(Consumer<ModelFile> listener) { this.onModelOpened = listener; return this; }

        public Builder threads(int n) { this.threads = n; return this; }

        /** Most sequences decoded together in one batch. */
        public Builder parallel(int n) { this.parallel = n; return this; }

        /** Most requests waiting for a batch slot; beyond it requests fail with {@link EngineOverloadedException}. */
        public Builder maxQueue(int n) { this.maxQueue = n; return this; }

        /**
         * How long {@link Engine#close()} lets the generations in flight finish (default 30 s) before it ends the
         * rest with {@link FinishReason#SHUTDOWN}; zero ends them at once.
         */
        public Builder drainTimeout(Duration d) {
            if (d.isNegative()) throw new IllegalArgumentException("the drain timeout must not be negative, got " + d);
            this.drainTimeout = d;
            return this;
        }

        public Engine build() { return Engine.open(this); }
    }
}
