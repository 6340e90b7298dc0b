package dev.tandem.cli;

import dev.tandem.model.ModelFormatException;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code tandem tokenize}: text to token ids, as the reference engine's {@code llama-tokenize} does. The text comes
 * from {@code --text}, a file ({@code --file}) or standard input ({@code -} or {@code --file -}), so that text a
 * command line cannot carry (a NUL byte, a long document) can be tokenized too.
 *
 * <p>A file or standard input must be UTF-8, and is refused otherwise with the offset of the first bad byte.
 * The tokenizer takes text, so invalid bytes could only be replaced, and the reference does not replace them
 * alike: its SentencePiece tokenizer keeps each as a byte token, its BPE tokenizer makes it U+FFFD. Either way
 * the tokens would silently stand for other bytes than the file's. Nothing else is changed: a byte order mark
 * or a final newline is tokenized as the text it is, as the reference does with {@code -f}.
 */
@Command(name = "tokenize", mixinStandardHelpOptions = true,
        description = "Tokenize text with a model's tokenizer (BOS per the model, special-token text parsed). "
                + "Give the text one way: --text, --file, or - for standard input.")
final class TokenizeCommand implements Callable<Integer> {
    private static final String STDIN = "-";

    @Spec CommandSpec spec;

    @Mixin ModelOptions model;

    @Option(names = {"-t", "--text"}, paramLabel = "TEXT", description = "The text to tokenize.")
    String text;

    @Option(names = {"-f", "--file"}, paramLabel = "FILE",
            description = "Tokenize the file's bytes, as UTF-8 text exactly as they are (a final newline included); - reads standard input.")
    String file;

    @Parameters(arity = "0..1", paramLabel = "-", description = "Tokenize standard input (the same as --file -).")
    String dash;

    @Option(names = "--no-bos", description = "Do not add BOS/EOS even if the model asks for them.")
    boolean noBos;

    @Option(names = "--no-parse-special", description = "Treat special-token text such as <|im_start|> as plain text.")
    boolean noParseSpecial;

    @Option(names = "--json", description = "Print {\"tokens\":[...]}.")
    boolean json;

    @Override
    public Integer call() {
        String input = text();
        Tokenizer tokenizer = load();
        int[] tokens = tokenizer.encode(input, !noBos, !noParseSpecial);
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

    /** The text from the one source given; none, two or an unknown argument is a usage error. */
    private String text() {
        if (dash != null && !dash.equals(STDIN)) {
            throw new UsageException("unexpected argument '" + dash + "': give the text with --text TEXT, --file FILE, or - for standard input");
        }
        List<String> given = new ArrayList<>();
        if (text != null) given.add("--text");
        if (file != null) given.add("--file");
        if (dash != null) given.add(STDIN);
        if (given.size() != 1) {
            throw new UsageException((given.isEmpty() ? "no text given" : "the text given " + given.size() + " ways (" + String.join(", ", given) + ")")
                    + ": give it once, with --text TEXT, --file FILE, or - for standard input");
        }
        if (text != null) return text;
        if (dash != null || file.equals(STDIN)) return utf8(readStandardInput(), "standard input");
        return utf8(read(Path.of(file)), "--file " + file);
    }

    private static byte[] readStandardInput() {
        try {
            return System.in.readAllBytes();
        } catch (IOException e) {
            throw new UserInputException("cannot read standard input: " + e.getMessage());
        }
    }

    private static byte[] read(Path path) {
        try {
            return Files.readAllBytes(path);
        } catch (NoSuchFileException e) {
            throw new UserInputException("--file: no such file " + path);
        } catch (AccessDeniedException e) {
            throw new UserInputException("--file: permission denied reading " + path);
        } catch (IOException e) {
            throw new UserInputException("--file: cannot read " + path + ": " + e.getMessage());
        }
    }

    /** {@code bytes} as text, or a {@link UserInputException} naming {@code source} and the first byte that is not UTF-8. */
    static String utf8(byte[] bytes, String source) {
        CharsetDecoder decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer out = CharBuffer.allocate(bytes.length); // UTF-8 never decodes to more chars than bytes
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) result = decoder.flush(out);
        if (result.isError()) {
            throw new UserInputException(String.format("%s is not UTF-8: byte 0x%02X at offset %d; convert it to UTF-8 first",
                    source, bytes[in.position()] & 0xFF, in.position()));
        }
        return out.flip().toString();
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

    /** A piece as one line of text: control characters (a NUL byte from a file, say) escaped, not sent to the terminal. */
    private static String printable(byte[] piece) {
        String s = new String(piece, StandardCharsets.UTF_8);
        if (s.contains("\uFFFD")) return "<0x" + HexFormat.of().withUpperCase().formatHex(piece) + ">";
        StringBuilder out = new StringBuilder(s.length());
        for (char c : s.toCharArray()) {
            switch (c) {
                case '\n' -> out.append("\\n");
                case '\t' -> out.append("\\t");
                case '\r' -> out.append("\\r");
                default -> {
                    if (c < 0x20 || c == 0x7F) out.append(String.format("\\x%02X", (int) c));
                    else out.append(c);
                }
            }
        }
        return out.toString();
    }
}
