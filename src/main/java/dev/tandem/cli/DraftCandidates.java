package dev.tandem.cli;

import dev.tandem.decode.VocabularyCheck;
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
 * {@link VocabularyCheck}. Smallest compatible first, then the incompatible ones with their reasons.
 */
final class DraftCandidates {
    private DraftCandidates() {}

    /**
     * @param path      the GGUF file or Hugging Face folder
     * @param bytes     weight bytes (file size, or the folder's safetensors)
     * @param sizeRatio bytes over the main model's bytes
     * @param reason    why it is incompatible; empty when compatible
     */
    public record Candidate(Path path, long bytes, double sizeRatio, Optional<String> reason) {
        public boolean compatible() { return reason.isEmpty(); }
    }

    /** Candidates under {@code dir} for {@code main} (whose weights take {@code mainBytes}); {@code mainPath} itself is skipped. */
    public static List<Candidate> scan(Tokenizer main, Path mainPath, long mainBytes, Path dir) {
        List<Candidate> out = new ArrayList<>();
        Path self = mainPath.toAbsolutePath().normalize();
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.toList()) {
                Path abs = p.toAbsolutePath().normalize();
                if (abs.equals(self)) continue;
                boolean gguf = Files.isRegularFile(p) && p.getFileName().toString().toLowerCase().endsWith(".gguf");
                boolean hf = Files.isDirectory(p) && Files.isRegularFile(p.resolve("config.json"))
                        && (Files.isRegularFile(p.resolve("tokenizer.json")) || Files.isRegularFile(p.resolve("tokenizer.model")));
                if (!gguf && !hf) continue;
                long bytes = gguf ? Files.size(p) : safetensorsBytes(p);
                out.add(new Candidate(p, bytes, mainBytes > 0 ? (double) bytes / mainBytes : 0, judge(main, p, gguf)));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot scan " + dir + " for draft models", e);
        }
        out.sort(Comparator.comparing(Candidate::compatible).reversed()
                .thenComparing(c -> c.compatible() ? c.bytes() : 0L)
                .thenComparing(c -> c.path().toString()));
        return out;
    }

    private static Optional<String> judge(Tokenizer main, Path p, boolean gguf) {
        Tokenizer draft;
        try {
            if (gguf) {
                try (GgufFile f = GgufFile.open(p)) {
                    if (!f.has("general.architecture") || f.metadata().keySet().stream().noneMatch(k -> k.endsWith(".block_count"))) {
                        return Optional.of("not a model (no architecture or layers), e.g. a vocabulary-only file");
                    }
                    draft = Tokenizers.fromGguf(f);
                }
            } else {
                draft = Tokenizers.fromHfFolder(p);
            }
        } catch (RuntimeException e) {
            return Optional.of("cannot read its vocabulary: " + e.getMessage());
        }
        return VocabularyCheck.firstDifference(main, draft);
    }

    private static long safetensorsBytes(Path folder) throws IOException {
        try (Stream<Path> files = Files.list(folder)) {
            long sum = 0;
            for (Path f : files.filter(f -> f.getFileName().toString().endsWith(".safetensors")).toList()) sum += Files.size(f);
            return sum;
        }
    }
}
