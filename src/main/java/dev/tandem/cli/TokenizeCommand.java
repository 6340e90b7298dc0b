package dev.tandem.cli;

import dev.tandem.model.ModelFormatException;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/** {@code tandem tokenize}: text to token ids, as the reference engine's {@code llama-tokenize} does. */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Tokenize text with a model's tokenizer (BOS per the model, special-token text parsed).")
final class TokenizeCommand implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Mixin ModelOptions model;

    @Option(names = {"-t", "--text"}, required = true, description = "The text to tokenize.")
    String text;

    @Option(names = "--no-bos", description = "Do not add BOS/EOS even if the model asks for them.")
    boolean noBos;

    @Option(names = "--no-parse-special", description = "Treat special-token text such as <|im_start|> as plain text.")
    boolean noParseSpecial;

    @Option(names = "--json", description = "Print {\"tokens\":[...]}.")
    boolean json;

    @Override
    public Integer call() {
        Tokenizer tokenizer = load();
        int[] tokens = tokenizer.encode(text, !noBos, !noParseSpecial);
        if (json) {
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("tokens", tokens);
            spec.commandLine().getOut().println(Json.write(out));
        } else {
            for (int t : tokens) {
                byte[] piece = tokenizer.tokenBytes(t, true);
                spec.commandLine().getOut().printf("%6d -> '%s'%n", t, printable(piece));
            }
        }
        return 0;
    }

    private Tokenizer load() {
        var path = model.model();
        if (Files.isDirectory(path)) return Tokenizers.fromHfFolder(path);
        if (!Files.exists(path)) throw new ModelFormatException(path, "no such file or folder");
        // A vocabulary-only GGUF (no weights) is enough to tokenize.
        GgufFile gguf = GgufFile.open(path);
        try {
            return Tokenizers.fromGguf(gguf);
        } finally {
            gguf.close();
        }
    }

    private static String printable(byte[] piece) {
        String s = new String(piece, StandardCharsets.UTF_8);
        if (s.contains("\uFFFD")) return "<0x" + HexFormat.of().withUpperCase().formatHex(piece) + ">";
        return s.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r");
    }
}
