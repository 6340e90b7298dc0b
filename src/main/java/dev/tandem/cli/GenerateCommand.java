package dev.tandem.cli;

import dev.tandem.decode.GenerationResult;
import dev.tandem.decode.Generator;
import dev.tandem.decode.SamplerSettings;
import dev.tandem.tokenizer.StreamDecoder;
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
        SamplerSettings settings = sampling.settings();
        PrintWriter out = spec.commandLine().getOut();
        try (Session s = Session.open(model.model(), draft, runtime, json, spec.commandLine().getErr())) {
            int[] promptTokens = s.tokenizer.encode(prompt, true, true);
            s.checkPrompt(promptTokens.length);
            StreamDecoder text = s.tokenizer.streamDecoder();
            StringBuilder all = new StringBuilder();
            Generator generator = s.generator(settings);
            GenerationResult r = generator.generate(promptTokens, s.limits(promptTokens.length, maxTokens), (token, fromDraft) -> {
                String piece = text.feed(token);
                all.append(piece);
                if (!json && !piece.isEmpty()) {
                    out.print(draft.color && fromDraft ? "\u001b[32m" + piece + "\u001b[0m" : piece);
                    out.flush();
                }
                return true;
            });
            String tail = text.flush();
            all.append(tail);
            if (json) {
                Map<String, Object> o = new LinkedHashMap<>();
                o.put("prompt_tokens", promptTokens);
                o.put("tokens", r.tokens());
                o.put("text", all.toString());
                o.put("stop_reason", r.stopReason().name().toLowerCase());
                o.put("stats", r.stats().toMap());
                out.println(Json.write(o));
            } else {
                out.println(tail);
                spec.commandLine().getErr().println(StatsLine.of(r.stats()));
            }
        }
        return 0;
    }
}
