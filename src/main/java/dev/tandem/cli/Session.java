package dev.tandem.cli;

import dev.tandem.decode.DraftAheadGenerator;
import dev.tandem.decode.DraftPolicy;
import dev.tandem.decode.Generator;
import dev.tandem.decode.ModelDrafter;
import dev.tandem.decode.NgramDrafter;
import dev.tandem.decode.SamplerSettings;
import dev.tandem.decode.SpeculativeGenerator;
import dev.tandem.decode.VocabularyCheck;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.Backend;
import dev.tandem.engine.Backends;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;

import java.io.PrintWriter;
import java.nio.file.Path;

/**
 * The models {@code tandem bench} works with, outside an engine: the main model, its tokenizer, and an optional draft,
 * loaded on a backend. ({@code generate} and {@code chat} run on an engine: {@link CommandEngine}.)
 */
final class Session implements AutoCloseable {
    final ModelFile mainFile;
    final Tokenizer tokenizer;
    final Backend backend;
    final LoadedModel main;
    /** Positions per sequence: the model's context, capped by --ctx (default 8192). */
    final int context;
    ModelFile draftFile;
    LoadedModel draft;
    private final DraftOptions draftOptions;

    private Session(ModelFile mainFile, Tokenizer tokenizer, Backend backend, LoadedModel main, int context, DraftOptions draftOptions) {
        this.mainFile = mainFile;
        this.tokenizer = tokenizer;
        this.backend = backend;
        this.main = main;
        this.context = context;
        this.draftOptions = draftOptions;
    }

    /**
     * Loads the model (and its draft) on the backend {@code runtime} names. With {@code auto}, a GPU that cannot take
     * the models (unsupported, too little memory, ...) gives way to the CPU; the reason is printed on {@code err}
     * in one line unless {@code quiet}.
     */
    static Session open(Path model, DraftOptions draftOptions, RuntimeOptions runtime, boolean quiet, PrintWriter err) {
        draftOptions.validate();
        if (runtime.profile) System.setProperty("tandem.profile", "true");
        LoadOptions options = new LoadOptions(runtime.threads(), runtime.kv(), 64);
        if (runtime.context != null && runtime.context < 1) throw new UsageException("--ctx must be at least 1, got " + runtime.context);
        try {
            Backends.checkName(runtime.backend);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--backend: " + e.getMessage());
        }
        Backends.Loaded<Session> loaded = Backends.load(runtime.backend, backend -> load(backend, model, draftOptions, runtime, options, quiet));
        if (loaded.fallbackReason() != null && !quiet) {
            err.println(loaded.fallbackReason());
            err.flush();
        }
        return loaded.value();
    }

    /** The models on {@code backend}; on failure closes what it opened (not the backend: {@link Backends#load} does). */
    private static Session load(Backend backend, Path model, DraftOptions draftOptions, RuntimeOptions runtime, LoadOptions options, boolean quiet) {
        ModelFile mainFile = ModelFile.open(model);
        Session s = null;
        try {
            Tokenizer tokenizer = Tokenizers.forModel(mainFile);
            LoadProgress.warmUp(mainFile, quiet);
            // K/V for one sequence of the session's context, so that a GPU too small says so before any upload.
            int context = Math.min(mainFile.config().contextLength(), runtime.context != null ? runtime.context : CommandEngine.DEFAULT_CONTEXT);
            options = options.withKvPositions(context);
            s = new Session(mainFile, tokenizer, backend, backend.load(mainFile, options), context, draftOptions);
            if (draftOptions.enabled() && !draftOptions.ngram()) {
                s.draftFile = ModelFile.open(ModelOptions.requireFileOrFolder(Path.of(draftOptions.draft)));
                VocabularyCheck.requireCompatible(tokenizer, Tokenizers.forModel(s.draftFile));
                LoadProgress.warmUp(s.draftFile, quiet);
                s.draft = backend.load(s.draftFile, options.asDraft());
            }
            return s;
        } catch (RuntimeException e) {
            if (s != null) s.closeModels();
            else mainFile.close();
            throw e;
        }
    }

    /**
     * Speculative decoding with {@code policy}: on a CUDA backend ("cuda", "cuda-host") with a draft model and a fixed
     * policy, the draft drafts ahead on its own stream while the main model verifies ({@link DraftAheadGenerator},
     * with the policy's draft-max, draft-min and p-min); otherwise, and on the CPU, {@link SpeculativeGenerator}.
     */
    Generator speculative(DraftPolicy policy, SamplerSettings settings) {
        if (draft != null && backend.name().startsWith("cuda") && policy instanceof DraftPolicy.Fixed fixed) {
            return new DraftAheadGenerator(main, draft, fixed, settings);
        }
        return new SpeculativeGenerator(main, draftOptions.ngram() ? new NgramDrafter() : new ModelDrafter(draft), policy, settings);
    }

    /** Generation that must run to {@code maxTokens} (benchmarks): prompt and tokens must fit the context. */
    void checkFits(int promptTokens, int maxTokens) {
        checkFits(promptTokens, maxTokens, context);
    }

    /** {@link #checkFits(int, int)} in a context of {@code context} positions. */
    static void checkFits(int promptTokens, int maxTokens, int context) {
        if ((long) promptTokens + maxTokens > context) {
            throw new UserInputException("a prompt of " + promptTokens + " tokens and " + maxTokens + " new tokens need "
                    + ((long) promptTokens + maxTokens) + " positions but the context holds " + context);
        }
    }

    @Override
    public void close() {
        closeModels();
        backend.close();
    }

    private void closeModels() {
        if (draft != null) draft.close();
        if (draftFile != null) draftFile.close();
        main.close();
        mainFile.close();
    }
}
