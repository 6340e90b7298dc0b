package dev.tandem.cli;

import dev.tandem.decode.GenerationResult;
import dev.tandem.decode.Generator;
import dev.tandem.tokenizer.ChatMessage;
import dev.tandem.tokenizer.ChatTemplate;
import dev.tandem.tokenizer.StreamDecoder;
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
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        try (Session s = Session.open(model.model(), draft, runtime, false, err)) {
            String source = s.tokenizer.chatTemplate().orElseThrow(() -> new UserInputException(
                    model.model() + " has no chat template; use 'tandem generate' instead"));
            ChatTemplate template = new ChatTemplate(source, text(s, s.tokenizer.bos()), text(s, s.tokenizer.eos()));
            List<ChatMessage> messages = new ArrayList<>();
            if (system != null) messages.add(ChatMessage.system(system));
            Generator generator = s.generator(sampling.settings());
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
                String rendered = template.render(messages, true);
                String bos = text(s, s.tokenizer.bos());
                boolean hasBos = !bos.isEmpty() && rendered.startsWith(bos);
                int[] prompt = s.tokenizer.encode(rendered, !hasBos, true);
                s.checkPrompt(prompt.length);
                StreamDecoder decoder = s.tokenizer.streamDecoder();
                StringBuilder reply = new StringBuilder();
                GenerationResult r = generator.generate(prompt, s.limits(prompt.length, maxTokens), (token, fromDraft) -> {
                    String piece = decoder.feed(token);
                    reply.append(piece);
                    out.print(draft.color && fromDraft ? "\u001b[32m" + piece + "\u001b[0m" : piece);
                    out.flush();
                    return true;
                });
                String tail = decoder.flush();
                reply.append(tail);
                out.println(tail);
                err.println(StatsLine.of(r.stats()));
                err.flush();
                messages.add(ChatMessage.assistant(reply.toString().strip()));
            }
        }
        return 0;
    }

    private static String text(Session s, int id) {
        return id < 0 ? "" : new String(s.tokenizer.tokenBytes(id, true), StandardCharsets.UTF_8);
    }
}
