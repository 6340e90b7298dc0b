package dev.tandem.cli;

import dev.tandem.decode.VocabularyCheck;
import dev.tandem.model.ModelFile;
import dev.tandem.model.gguf.GgufFile;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * Finds draft models for a main model: every GGUF file and Hugging Face folder under a directory, each judged by
 * {@link VocabularyCheck} and by its size.
 *
 * <p>Only a smaller model can make decoding faster. Decoding is bound by reading the weights, so a pass costs
 * about its model's weight bytes: with a draft at least as large as the main model, k draft passes and one
 * verification cost at least as much as the k + 1 plain steps they can save at best (every draft token
 * accepted). Sizes are {@link ModelFile#weightBytes} on both sides, so that a copy of the main model, in any
 * container, is exactly as large as the main model.
 */
final class DraftCandidates {
    private DraftCandidates() {}

    sealed interface Candidate permits Compatible, Incompatible {
        /** The GGUF file or Hugging Face folder. */
        Path path();
    }

    /** A model whose vocabulary matches the main model's; {@code sizeRatio} is its weight bytes over the main model's. */
    record Compatible(Path path, long weightBytes, double sizeRatio) implements Candidate {
        boolean smallerThanMain() { return sizeRatio < 1; }
    }

    /** A model, or a file that looks like one, that cannot draft for the main model, and why. */
    record Incompatible(Path path, String reason) implements Candidate {}

    /**
     * What a folder holds for a main model.
     *
     * @param drafts       compatible and smaller than the main model, smallest first: the ones worth using
     * @param notSmaller   compatible but at least as large as the main model, smallest first
     * @param incompatible the rest, by path
     */
    record Found(List<Compatible> drafts, List<Compatible> notSmaller, List<Incompatible> incompatible) {
        boolean isEmpty() { return drafts.isEmpty() && notSmaller.isEmpty() && incompatible.isEmpty(); }
    }

    /** Candidates under {@code dir} for {@code main}; the main model's own file or folder is skipped. */
    static Found scan(ModelFile main, Path dir) {
        Tokenizer mainTokenizer = Tokenizers.forModel(main);
        List<Compatible> compatible = new ArrayList<>();
        List<Incompatible> incompatible = new ArrayList<>();
        Path self = main.path().toAbsolutePath().normalize();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.toList()) {
                if (p.toAbsolutePath().normalize().equals(self)) continue;
                boolean gguf = Files.isRegularFile(p) && p.getFileName().toString().toLowerCase().endsWith(".gguf");
                boolean hf = Files.isDirectory(p) && Files.isRegularFile(p.resolve("config.json"))
                        && (Files.isRegularFile(p.resolve("tokenizer.json")) || Files.isRegularFile(p.resolve("tokenizer.model")));
                if (!gguf && !hf) continue;
                switch (judge(mainTokenizer, main.weightBytes(), p, gguf)) {
                    case Compatible c -> compatible.add(c);
                    case Incompatible i -> incompatible.add(i);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot scan " + dir + " for draft models", e);
        }
        compatible.sort(Comparator.comparingLong(Compatible::weightBytes).thenComparing(c -> c.path().toString()));
        incompatible.sort(Comparator.comparing(c -> c.path().toString()));
        return new Found(compatible.stream().filter(Compatible::smallerThanMain).toList(),
                compatible.stream().filter(c -> !c.smallerThanMain()).toList(), List.copyOf(incompatible));
    }

    private static Candidate judge(Tokenizer main, long mainWeightBytes, Path p, boolean gguf) {
        Tokenizer draft;
        try {
            if (gguf) {
                try (GgufFile f = GgufFile.open(p)) {
                    if (!f.has("general.architecture") || f.metadata().keySet().stream().noneMatch(k -> k.endsWith(".block_count"))) {
                        return new Incompatible(p, "not a model (no architecture or layers), e.g. a vocabulary-only file");
                    }
                    draft = Tokenizers.fromGguf(f);
                }
            } else {
                draft = Tokenizers.fromHfFolder(p);
            }
        } catch (RuntimeException e) {
            return new Incompatible(p, "cannot read its vocabulary: " + e.getMessage());
        }
        Optional<String> difference = VocabularyCheck.firstDifference(main, draft);
        if (difference.isPresent()) return new Incompatible(p, difference.get());
        try (ModelFile file = ModelFile.open(p)) {
            return new Compatible(p, file.weightBytes(), (double) file.weightBytes() / mainWeightBytes);
        } catch (RuntimeException e) {
            return new Incompatible(p, "cannot read it as a model: " + e.getMessage());
        }
    }
}
