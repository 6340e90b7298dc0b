package dev.tandem.engine;

import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.forge.ForgeType;
import dev.tandem.model.Architecture;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.testing.StandInBackend;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Engines whose models are {@link TableModel}s (or any stand-in {@link LoadedModel}): the real {@link Engine} and
 * its scheduler — the loop the server and the CLI run — on models small enough that a test can enumerate the exact
 * output distribution or read a draft's confidence off its table.
 *
 * <p>The engine opens model files and reads their tokenizers, so each stand-in rides on a carrier: a forged GGUF of
 * one tiny layer and the synthetic vocabulary, whose weights are never read; a {@link StandInBackend} loads the
 * stand-ins in the carriers' place. Requests give token ids and ignore end-of-generation (the synthetic vocabulary's
 * EOS id is a table token), so a generation runs exactly its max tokens, as the table tests always have.
 */
final class TableEngine {
    /** The draft model's id in requests. */
    static final String DRAFT = "table-draft";
    /** Positions per sequence: room for the tests' prompts and up to 64 generated tokens. */
    static final int CONTEXT = 128;

    private static Path carrier;

    private TableEngine() {}

    /** An engine running {@code main} alone, {@code parallel} sequences at a time (as many more may queue). */
    static Engine plain(LoadedModel main, int parallel) {
        return builder(main, null, parallel).build();
    }

    /** An engine running {@code main} with {@code draft} loaded as {@link #DRAFT}, drafting ahead or not. */
    static Engine speculative(LoadedModel main, LoadedModel draft, int parallel, boolean draftAhead) {
        return builder(main, draft, parallel).draftAhead(draftAhead).build();
    }

    static Tandem.Builder builder(LoadedModel main, LoadedModel draft, int parallel) {
        Tandem.Builder b = Tandem.builder().model("table-main", carrier()).backend(new StandInBackend("table", main, draft))
                .contextLength(CONTEXT).parallel(parallel).maxQueue(parallel);
        if (draft != null) b.draft(DRAFT, carrier());
        return b;
    }

    /** Generates {@code maxTokens} tokens after {@code prompt}, end-of-generation ignored. */
    static GenerationRequest.Builder request(int[] prompt, int maxTokens) {
        return GenerationRequest.builder().promptTokens(prompt).maxTokens(maxTokens).ignoreEndOfGeneration(true);
    }

    /**
     * Runs every request on {@code engine}, as many at once as it runs in parallel, and returns their outputs in
     * request order.
     */
    static List<GenerationOutput> runAll(Engine engine, List<GenerationRequest> requests, int parallel) {
        List<GenerationOutput> out = new ArrayList<>(requests.size());
        for (int first = 0; first < requests.size(); first += parallel) {
            List<Generation> wave = new ArrayList<>(parallel);
            for (GenerationRequest r : requests.subList(first, Math.min(requests.size(), first + parallel))) wave.add(engine.generate(r));
            for (Generation g : wave) out.add(g.await());
        }
        return out;
    }

    /** The carrier file, forged once per test run. */
    static synchronized Path carrier() {
        if (carrier == null) {
            try {
                Path dir = Files.createTempDirectory("tandem-table-engine");
                Path file = dir.resolve("carrier.gguf");
                Forge.write(new ForgeSpec(Architecture.LLAMA, 260, 8, 1, 1, 1, 8, 8, 4096, ForgeType.F32, false, 10000f, 1, 1f, 0, null), file);
                file.toFile().deleteOnExit();
                dir.toFile().deleteOnExit();
                carrier = file;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return carrier;
    }

}
