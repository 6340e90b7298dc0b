package dev.tandem.cli;

import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.GenerationEvent;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.PromptTooLongException;
import dev.tandem.engine.SamplingSettings;
import dev.tandem.engine.Tandem;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.Duration;
import java.util.function.Consumer;

/**
 * The engine that {@code generate} and {@code chat} run on: one sequence at a time, the context of {@code --ctx}
 * (default 8192, at most the model's), the draft of {@code --draft}. The same scheduler as {@code tandem serve}, so
 * the command line decodes, drafts and drafts ahead (on CUDA) as the server does.
 */
final class CommandEngine implements AutoCloseable {
    /** The context when {@code --ctx} is not given (the model's own when shorter). */
    static final int DEFAULT_CONTEXT = 8192;

    final Engine engine;
    private final DraftSettings draft;

    private CommandEngine(Engine engine, DraftSettings draft) {
        this.engine = engine;
        this.draft = draft;
    }

    /**
     * Loads the model (and its draft) on the backend {@code runtime} names, reading the weights in with a progress bar
     * on a terminal ({@link LoadProgress}) unless {@code quiet}. With {@code auto}, a GPU that cannot take the models
     * gives way to the CPU, and the reason is printed on {@code err} in one line unless {@code quiet}.
     */
    static CommandEngine open(Path model, DraftOptions draftOptions, RuntimeOptions runtime, boolean quiet, PrintWriter err) {
        draftOptions.validate();
        Tandem.Builder builder = runtime.engineBuilder(model)
                .contextLengthAtMost(runtime.context != null ? runtime.context : DEFAULT_CONTEXT)
                .parallel(1)
                .drainTimeout(Duration.ZERO)     // a generation still running when the command ends has no one to wait for it
                .onModelOpened(file -> LoadProgress.warmUp(file, quiet));
        if (draftOptions.enabled() && !draftOptions.ngram()) builder.draft(ModelOptions.requireFileOrFolder(Path.of(draftOptions.draft)));
        Engine engine = builder.build();
        String fallback = engine.backend().fallbackReason();
        if (fallback != null && !quiet) {
            err.println(fallback);
            err.flush();
        }
        return new CommandEngine(engine, draftOptions.settings());
    }

    /** A request with the command's sampling and draft, for at most {@code maxTokens} (the context caps it further). */
    GenerationRequest.Builder request(int maxTokens, SamplingSettings sampling) {
        return GenerationRequest.builder().maxTokens(Math.min(maxTokens, engine.contextLength())).sampling(sampling).draft(draft);
    }

    /**
     * Runs {@code request} to its end (an end-of-generation token, its max tokens, or a full context), handing the
     * text chunks to {@code onChunk} as they come. A prompt that leaves no room to generate is one line naming both
     * numbers and the flag that sets the context.
     */
    GenerationOutput generate(GenerationRequest request, Consumer<GenerationEvent.Chunk> onChunk) {
        try {
            return StreamedGeneration.consume(engine.generate(request), onChunk);
        } catch (PromptTooLongException e) {
            throw new UserInputException("the prompt has " + e.promptTokens() + " tokens but the context holds " + e.contextLength()
                    + " (nothing left to generate; --ctx sets the context, up to the model's)");
        }
    }

    @Override
    public void close() { engine.close(); }
}
