package dev.tandem.bench;

import dev.tandem.engine.DraftSettings;
import dev.tandem.engine.Engine;
import dev.tandem.engine.SamplingSettings;
import dev.tandem.engine.Tandem;
import dev.tandem.model.ModelFile;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The bench's shape (rows, identical outputs, pass costs, plot file) on the Q8_0 KJV pair; its speeds are not asserted. */
class SpeculativeBenchTest {
    @Test
    void reportsEveryConfigurationAndDrawsThePlot(@TempDir Path dir) throws Exception {
        List<int[]> prompts = ReferenceRecords.generations("kjv-main-q8_0.jsonl").subList(0, 2).stream().map(Generation::promptTokens).toList();
        SpeculativeBench.Report report;
        try (Engine engine = Tandem.builder().model(SharedData.kjv("kjv-main-q8_0.gguf")).draft(SharedData.kjv("kjv-draft-q8_0.gguf"))
                .backend("cpu").threads(1).parallel(1).prefixCache(false).build()) {
            var bench = new SpeculativeBench(engine, DraftSettings.model(null), System.out::println);
            report = bench.run(new SpeculativeBench.Settings(prompts, 24, List.of(2, 4), true, 0f, 1, SamplingSettings.greedy()));
        }
        assertEquals(0, report.passCost().length, "pass costs are measured apart");
        try (ModelFile mf = ModelFile.open(SharedData.kjv("kjv-main-q8_0.gguf"));
             LoadedModel main = new CpuBackend().load(mf, LoadOptions.defaults().withThreads(1))) {
            report = report.withPassCost(PassCostProbe.relativeCosts(main, prompts.getFirst(), 8, 3));
            System.out.print(report.table());
            assertEquals(3, report.runs().size());
            assertEquals(4, report.runs().get(1).draftMax());
            assertTrue(report.runs().get(2).adaptive());
            for (var row : report.runs()) {
                assertEquals(2, row.promptsIdentical(), "greedy speculative output equals plain: " + row);
                assertTrue(row.acceptedTokens() <= row.draftedTokens());
                assertEquals(row.specTokensPerSecond() / row.plainTokensPerSecond(), row.speedup(), 1e-9);
            }
            assertEquals(8, report.passCost().length);
            assertEquals(List.of("draft_max", "adaptive", "plain_tokens_per_second", "spec_tokens_per_second", "speedup",
                    "acceptance_rate", "mean_accepted_length", "total_draft_tokens_count", "accepted_draft_tokens_count",
                    "same_tokens_as_plain", "prompts"), List.copyOf(report.runs().getFirst().toMap().keySet()));
            Path png = dir.resolve("bench.png");
            BenchPlot.writePng(report, "KJV Q8_0 pair", png);
            byte[] head = java.util.Arrays.copyOf(Files.readAllBytes(png), 8);
            assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, head);
            Files.copy(png, Path.of("target", "bench-kjv-q8_0.png"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
