package dev.tandem.cli;

import dev.tandem.model.gguf.GgufFile;
import dev.tandem.testing.SharedData;
import dev.tandem.tokenizer.Tokenizer;
import dev.tandem.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DraftCandidatesTest {
    @Test
    void listsTheKjvDraftsSmallestFirstAndRejectsOtherVocabularies() throws Exception {
        Path main = SharedData.kjv("kjv-main-f32.gguf");
        Tokenizer tokenizer;
        try (GgufFile f = GgufFile.open(main)) {
            tokenizer = Tokenizers.fromGguf(f);
        }
        List<DraftCandidates.Candidate> found = DraftCandidates.scan(tokenizer, main, Files.size(main), SharedData.root().resolve("models"));
        found.forEach(c -> System.out.printf("  %-60s %s%n", SharedData.root().relativize(c.path()),
                c.compatible() ? String.format("compatible, %.2f of the main model", c.sizeRatio()) : c.reason().get()));
        List<String> compatible = found.stream().filter(DraftCandidates.Candidate::compatible).map(c -> c.path().getFileName().toString()).toList();
        assertTrue(compatible.contains("kjv-draft-q8_0.gguf") && compatible.contains("kjv-draft-f32.gguf") && compatible.contains("draft-hf"), compatible.toString());
        assertFalse(compatible.contains("kjv-main-f32.gguf"), "the main model itself is not listed");
        for (int i = 1; i < found.size(); i++) {
            if (found.get(i).compatible()) {
                assertTrue(found.get(i - 1).compatible() && found.get(i - 1).bytes() <= found.get(i).bytes(), "smallest compatible first");
            }
        }
        DraftCandidates.Candidate llama3 = found.stream().filter(c -> c.path().endsWith(Path.of("tokenizers", "llama3", "vocab.gguf"))).findFirst().orElseThrow();
        assertFalse(llama3.compatible());
        assertEquals(found.stream().filter(DraftCandidates.Candidate::compatible).count(), compatible.size());
    }
}
