package dev.tandem.engine;

import dev.tandem.model.ModelFile;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** The builder's options for a command line: a context bounded by the model's, and a look at each model file opened. */
class BuilderLoadOptionsTest {
    static Engine build(Tandem.Builder b) {
        return b.model(EngineTest.MAIN).backend("cpu").threads(1).parallel(1).build();
    }

    @Test
    void contextLengthAtMostIsTheBoundOrTheModelsContextWhereShorter() {
        try (Engine e = build(Tandem.builder().contextLengthAtMost(100))) {
            assertEquals(100, e.contextLength());
        }
        try (Engine e = build(Tandem.builder().contextLengthAtMost(1 << 20))) {
            assertEquals(e.mainModel().contextLength(), e.contextLength());
            assertTrue(e.contextLength() < 1 << 20);
        }
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class, () -> build(Tandem.builder().contextLength(1 << 20)).close());
        assertTrue(refused.getMessage().contains("outside"), refused.getMessage());
    }

    @Test
    void onModelOpenedSeesTheMainModelThenItsDraft() {
        List<Path> opened = new ArrayList<>();
        try (Engine e = build(Tandem.builder().draft(EngineTest.DRAFT).onModelOpened((ModelFile f) -> opened.add(f.path())))) {
            assertEquals(List.of(EngineTest.MAIN, EngineTest.DRAFT), opened);
        }
    }
}
