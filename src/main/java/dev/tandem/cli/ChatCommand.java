package dev.tandem.cli;

import dev.tandem.engine.GenerationOutput;
import dev.tandem.engine.SamplingSettings;
import dev.tandem.tokenizer.ChatMessage;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code tandem chat}: an interactive conversation rendered with the model's own chat template. */
@Command(name = "chat", mixinStandardHelpOptions = true,
        description = "Chat with a model (its chat template), optionally with a draft; speed and acceptance after each reply.")
final class ChatCommand implements Callable<Integer> {
    @Spec CommandSpec spec;
    @Mixin ModelOptions model;
    @Mixin SamplingOptions sampling;
    @Mixin DraftOptions draft;
    @Mixin RuntimeOptions runtime;

    @Option(names = {"-s", "--system"}, description = "A system message to start the conversation with.")
    String system;

    @Option(names = {"-n", "--max-tokens"}, defaultValue = "256", description = "Most tokens per reply (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Override
    public Integer call() throws IOException {
        if (maxTokens <= 0) throw new UsageException("--max-tokens must be at least 1, got " + maxTokens);
        SamplingSettings settings = sampling.settings();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (CommandEngine e = CommandEngine.open(model.model(), draft, runtime, false, err)) {
            if (e.engine.chatTemplate().isEmpty()) {
                throw new UserInputException(model.model() + " has no chat template; use 'tandem generate' instead");
            }
            List<ChatMessage> messages = new ArrayList<>();
            if (system != null) messages.add(ChatMessage.system(system));
            ChunkPrinter printer = new ChunkPrinter(out, draft.color);
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
            boolean terminal = System.console() != null;
            while (true) {
                if (terminal) {
                    out.print("> ");
                    out.flush();
                }
                String line = in.readLine();
                if (line == null || line.equals("/exit") || line.equals("/quit")) break;
                if (line.isBlank()) continue;
                messages.add(ChatMessage.user(line));
                GenerationOutput r = e.generate(e.request(maxTokens, settings).messages(messages).build(), printer);
                out.println();
                err.println(StatsLine.of(r.stats()));
                err.flush();
                messages.add(ChatMessage.assistant(r.text().strip()));
            }
        }
        return 0;
    }
}
