package dev.tandem.cli;

import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.forge.ForgeType;
import dev.tandem.model.Architecture;
import dev.tandem.model.ModelFormatException;
import dev.tandem.model.gguf.GgufFile;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code tandem forge}: writes synthetic GGUF models for tests and benchmarks. Handles its own errors (one line
 * on stderr; exit code 2 for bad flags, 1 for unreadable files and I/O failures), so it behaves the same run
 * alone ({@link #commandLine()}) or as a subcommand.
 */
@Command(name = "forge", mixinStandardHelpOptions = true, sortOptions = false,
        description = {
                "Write a GGUF model with random seeded weights (same flags and seed: same bytes), a draft cut from one,",
                "or the same weights in another type. Shapes start from --preset (default tiny); flags override it."},
        footer = {
                "",
                "A main/draft pair that agrees on most tokens (for speculative decoding benchmarks):",
                "  tandem forge --preset llama-3.2-3b --draft-layers 2 --agreement-eps 0.3 --out main.gguf",
                "  tandem forge --draft-of main.gguf --layers 2 --out draft.gguf",
                "The draft is MAIN's embedding, first 2 layers, output norm and head, bytes copied, with MAIN's tokenizer.",
                "MAIN's layers from --draft-layers on have their output projections (attn_output, ffn_down) multiplied",
                "by --agreement-eps: 0 makes the pair identical, 1 leaves MAIN unscaled; acceptance falls as eps grows.",
                "",
                "Same weights in another type:  tandem forge --from f32.gguf --type q8_0 --out q8.gguf"})
public final class ForgeCommand implements Callable<Integer> {
    static final int OK = 0, FAILURE = 1, USAGE = 2;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "The GGUF file to write.")
    Path out;

    @Option(names = "--preset", paramLabel = "NAME", description = "tiny (default), llama-3.2-1b, llama-3.2-3b, llama-3-8b, llama-3.1-8b (the 3.1/3.2 ones with Llama 3 RoPE scaling).")
    String preset = "tiny";

    @Option(names = "--arch", paramLabel = "ARCH", description = "llama or qwen2 (qwen2 adds Q/K/V biases).")
    String arch;

    @Option(names = "--vocab", paramLabel = "N", description = "Vocabulary size (synthetic SentencePiece vocabulary).")
    Integer vocab;

    @Option(names = "--hidden", paramLabel = "N", description = "Embedding width.")
    Integer hidden;

    @Option(names = "--layers", paramLabel = "N", description = "Transformer layers (with --draft-of: the draft's layers).")
    Integer layers;

    @Option(names = "--heads", paramLabel = "N", description = "Attention heads.")
    Integer heads;

    @Option(names = "--kv-heads", paramLabel = "N", description = "Key/value heads (divides --heads).")
    Integer kvHeads;

    @Option(names = "--head-dim", paramLabel = "N", description = "Size of one head.")
    Integer headDim;

    @Option(names = "--ffn", paramLabel = "N", description = "Feed-forward width.")
    Integer ffn;

    @Option(names = "--context", paramLabel = "N", description = "Context length written to the file.")
    Integer context;

    @Option(names = "--type", paramLabel = "TYPE",
            description = "Matrix type: f32, f16, bf16, q8_0, q4_0, q4_k, q5_k, q6_k, q4_k_m (Q4_K, Q6_K for the head and for attn_v/ffn_down of some layers). Norms stay F32.")
    String type;

    @Option(names = "--tied", description = "The output head is the token embedding.")
    boolean tied;

    @Option(names = "--untied", description = "A separate output head.")
    boolean untied;

    @Option(names = "--rope-theta", paramLabel = "X", description = "RoPE base frequency.")
    Float ropeTheta;

    @Option(names = "--seed", paramLabel = "N", description = "Seed of the weights (default 1).")
    Long seed;

    @Option(names = "--agreement-eps", paramLabel = "EPS", description = "Factor on attn_output and ffn_down of layers >= --draft-layers (default 1).")
    Float agreementEps;

    @Option(names = "--draft-layers", paramLabel = "N", description = "Layers a draft of this model will keep (with --agreement-eps).")
    Integer draftLayers;

    @Option(names = "--tokenizer-from", paramLabel = "GGUF", description = "Copy the tokenizer.* metadata of this file (vocab = its token count).")
    Path tokenizerFrom;

    @Option(names = "--draft-of", paramLabel = "MAIN", description = "Write a draft of MAIN: its first --layers layers, embedding, norm, head, tokenizer.")
    Path draftOf;

    @Option(names = "--from", paramLabel = "GGUF", description = "Re-write this model's matrices in --type.")
    Path from;

    @Option(names = "--quiet", description = "No progress line, even on a terminal.")
    boolean quiet;

    @CommandLine.Spec CommandLine.Model.CommandSpec commandSpec;

    /** A flag combination or value the command cannot use. */
    private static final class BadFlag extends RuntimeException {
        BadFlag(String message) { super(message); }
    }

    @Override
    public Integer call() {
        PrintWriter err = commandSpec.commandLine().getErr();
        try {
            checkOut();
            long start = System.nanoTime();
            Forge.Progress progress = progress(err);
            String what;
            if (draftOf != null) {
                int n = draftLayerCount(err);
                Forge.writeDraft(draftOf, n, out, progress);
                what = "draft of " + draftOf.getFileName() + ", first " + n + " layers";
            } else if (from != null) {
                if (type == null) throw new BadFlag("--from needs --type");
                onlyWith("--from", "--type");
                ForgeType t = parseType();
                Forge.convert(from, t, out, progress);
                what = from.getFileName() + " in " + t;
            } else {
                ForgeSpec spec = spec();
                Forge.write(spec, out, progress);
                what = String.format("%s vocab %d hidden %d layers %d heads %d/%d ffn %d %s%s", spec.architecture().ggufName(),
                        spec.vocab(), spec.hidden(), spec.layers(), spec.heads(), spec.kvHeads(), spec.ffn(), spec.type(),
                        spec.tied() ? " tied" : "");
            }
            PrintWriter o = commandSpec.commandLine().getOut();
            o.printf(Locale.ROOT, "wrote %s: %s, %.1f MB in %.1f s%n", out, what, Files.size(out) / 1e6, (System.nanoTime() - start) / 1e9);
            o.flush();
            return OK;
        } catch (BadFlag | IllegalArgumentException e) {
            return fail(err, e.getMessage(), USAGE);
        } catch (ModelFormatException e) {
            return fail(err, e.getMessage(), FAILURE);
        } catch (IOException e) {
            return fail(err, "cannot write " + out + ": " + e, FAILURE);
        }
    }

    private static int fail(PrintWriter err, String message, int code) {
        err.println("tandem forge: " + message);
        err.flush();
        return code;
    }

    private void checkOut() {
        Path parent = out.toAbsolutePath().getParent();
        if (parent != null && !Files.isDirectory(parent)) throw new BadFlag("--out: folder " + parent + " does not exist");
        if (Files.isDirectory(out)) throw new BadFlag("--out: " + out + " is a folder");
        if (Files.exists(out, LinkOption.NOFOLLOW_LINKS) && !Files.isRegularFile(out, LinkOption.NOFOLLOW_LINKS)) {
            throw new BadFlag("--out: " + out + " is not a regular file (a device, FIFO or link); forge replaces only regular files");
        }
    }

    private ForgeType parseType() {
        try {
            return ForgeType.parse(type);
        } catch (IllegalArgumentException e) {
            throw new BadFlag("--type: " + e.getMessage());
        }
    }

    /** The flags given besides {@code allowed} and {@code --out}, by name, for the modes that take few. */
    private void onlyWith(String mode, String... allowed) {
        List<String> given = new ArrayList<>();
        for (CommandLine.Model.OptionSpec o : commandSpec.commandLine().getParseResult().matchedOptions()) {
            String name = o.longestName();
            if (!name.equals(mode) && !name.equals("--out") && !name.equals("--quiet") && !List.of(allowed).contains(name)) given.add(name);
        }
        if (!given.isEmpty()) throw new BadFlag(mode + " cannot be combined with " + String.join(", ", given));
    }

    private int draftLayerCount(PrintWriter err) {
        onlyWith("--draft-of", "--layers");
        Integer planned;
        try (GgufFile main = GgufFile.open(draftOf)) {
            // A value outside 1..int range is not a plan this forge wrote: ignore it rather than narrow it.
            planned = main.findLong("tandem.forge.draft_layers").filter(n -> n > 0 && n <= Integer.MAX_VALUE).map(Long::intValue).orElse(null);
        }
        if (layers == null) {
            if (planned == null) throw new BadFlag("--draft-of needs --layers N (the draft's layer count)");
            return planned;
        }
        if (planned != null && !planned.equals(layers)) {
            err.println("tandem forge: warning: " + draftOf + " was forged with --draft-layers " + planned
                    + "; a draft of " + layers + " layers does not match its --agreement-eps scaling");
        }
        return layers;
    }

    private ForgeSpec spec() {
        if (tied && untied) throw new BadFlag("--tied and --untied exclude each other");
        ForgeSpec p = ForgeSpec.preset(preset);
        Architecture a = p.architecture();
        if (arch != null) {
            a = switch (arch.trim().toLowerCase(Locale.ROOT)) {
                case "llama" -> Architecture.LLAMA;
                case "qwen2" -> Architecture.QWEN2;
                default -> throw new BadFlag("--arch: unknown architecture '" + arch + "' (known: llama, qwen2)");
            };
        }
        int v = vocab != null ? vocab : p.vocab();
        if (tokenizerFrom != null) {
            if (!Files.isRegularFile(tokenizerFrom)) throw new BadFlag("--tokenizer-from: no such file " + tokenizerFrom);
            try (GgufFile f = GgufFile.open(tokenizerFrom)) {
                Object tokens = f.metadata().get("tokenizer.ggml.tokens");
                if (!(tokens instanceof String[] t)) throw new BadFlag("--tokenizer-from: " + tokenizerFrom + " has no tokenizer.ggml.tokens");
                if (vocab == null) v = t.length;
            }
        }
        int l = layers != null ? layers : p.layers();
        int draft = draftLayers != null ? draftLayers : 0;
        return new ForgeSpec(a, v,
                hidden != null ? hidden : p.hidden(),
                l,
                heads != null ? heads : p.heads(),
                kvHeads != null ? kvHeads : p.kvHeads(),
                headDim != null ? headDim : p.headDim(),
                ffn != null ? ffn : p.ffn(),
                context != null ? context : p.context(),
                type != null ? parseType() : p.type(),
                tied || (!untied && p.tied()),
                ropeTheta != null ? ropeTheta : p.ropeTheta(),
                seed != null ? seed : p.seed(),
                agreementEps != null ? agreementEps : 1f,
                draft,
                tokenizerFrom,
                p.llama3RopeFactor());
    }

    /** A progress line on a terminal (stderr), redrawn at most five times a second; nothing otherwise. */
    private Forge.Progress progress(PrintWriter err) {
        java.io.Console console = System.console();
        if (quiet || console == null || !console.isTerminal()) return Forge.Progress.NONE;
        long[] last = {0};
        return (written, total) -> {
            long now = System.nanoTime();
            if (written < total && now - last[0] < 200_000_000L) return;
            last[0] = now;
            err.printf(Locale.ROOT, "\rforge: %.2f / %.2f GB (%d%%)%s", written / 1e9, total / 1e9, written * 100 / Math.max(1, total),
                    written >= total ? "\n" : "");
            err.flush();
        };
    }

    /** The command alone, with picocli's parse errors also reduced to one line and exit code 2. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new ForgeCommand());
        cl.setParameterExceptionHandler((e, args) -> fail(e.getCommandLine().getErr(), e.getMessage(), USAGE));
        return cl;
    }

    public static void main(String[] args) {
        System.exit(commandLine().execute(args));
    }
}
