package dev.tandem.cli;

import dev.tandem.model.ModelFile;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DraftCandidatesTest {
    @Test
    void offersTheSmallerKjvModelsSmallestFirstSetsTheLargerApartAndRejectsOtherVocabularies() {
        DraftCandidates.Found found;
        try (ModelFile main = ModelFile.open(SharedData.kjv("main-hf"))) { // BF16 safetensors
            found = DraftCandidates.scan(main, SharedData.root().resolve("models"));
        }
        List<String> drafts = found.drafts().stream().map(c -> c.path().getFileName().toString()).toList();
        assertTrue(drafts.containsAll(List.of("kjv-draft-q8_0.gguf", "kjv-draft-f32.gguf", "draft-hf", "kjv-main-q8_0.gguf")), drafts.toString());
        assertFalse(drafts.contains("main-hf"), "the main model itself is not listed");
        for (int i = 1; i < found.drafts().size(); i++) {
            assertTrue(found.drafts().get(i - 1).weightBytes() <= found.drafts().get(i).weightBytes(), "smallest first: " + drafts);
        }
        DraftCandidates.Compatible f32 = found.notSmaller().stream()
                .filter(c -> c.path().endsWith(Path.of("kjv", "kjv-main-f32.gguf"))).findFirst().orElseThrow();
        assertEquals(2.0, f32.sizeRatio(), "the same weights in F32, counted as the main model's BF16 ones are");
        assertTrue(found.incompatible().stream().anyMatch(c -> c.path().endsWith(Path.of("tokenizers", "llama3", "vocab.gguf"))));
    }
}
