package dev.tandem.cli;

import dev.tandem.engine.FinishReason;
import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.GenerationRequest;
import dev.tandem.engine.SamplingSettings;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code tandem generate}: a prompt in, the model's continuation streamed out. */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate a continuation of a prompt, optionally with speculative decoding (--draft).")
final class GenerateCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ModelOptions model;
    @Mixin SamplingOptions sampling;
    @Mixin DraftOptions draft;
    @Mixin RuntimeOptions runtime;

    @Option(names = {"-p", "--prompt"}, required = true, description = "The prompt (BOS per the model; special-token text parsed).")
    String prompt;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "128", description = "Most tokens to generate (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--json", description = "Print one JSON object with prompt tokens, tokens, text and stats.")
    boolean json;

    @Override
    public Integer call() {
        if (maxTokens <= 0) throw new UsageException("--max-tokens must be at least 1, got " + maxTokens);
        SamplingSettings settings = sampling.settings();
        PrintWriter out = spec.commandLine().getOut();
        try (CommandEngine e = CommandEngine.open(model.model(), draft, runtime, json, spec.commandLine().getErr())) {
            // Tokenised once, here, so that --json reports the very ids the engine ran.
            int[] promptTokens = e.engine.promptTokens(e.request(maxTokens, settings).prompt(prompt).build());
            GenerationRequest request = e.request(maxTokens, settings).promptTokens(promptTokens).build();
            GenerationOutput r = e.generate(request, json ? chunk -> { } : new ChunkPrinter(out, draft.color));
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("prompt_tokens", promptTokens);
                o.put("tokens", r.tokenIds());
                o.put("text", r.text());
                o.put("stop_reason", stopReason(r.finishReason()));
                o.put("stats", r.stats().toMap());
                out.println(Json.write(o));
            } else {
                out.println();
                spec.commandLine().getErr().println(StatsLine.of(r.stats()));
            }
        }
        return 0;
    }

    /**
     * The {@code stop_reason} of {@code --json}, under the names it has always had: "end_of_generation" for an
     * end-of-generation token, "max_tokens" for {@code --max-tokens} or a full context.
     */
    static String stopReason(FinishReason reason) {
        return switch (reason) {
            case STOP -> "end_of_generation";
            case LENGTH -> "max_tokens";
            default -> reason.apiName();
        };
    }
}
