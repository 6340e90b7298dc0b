package dev.tandem.decode;

import dev.tandem.testing.ReferenceRecords;
import org.junit.jupiter.api.Test;

class TimingProbeTest {
    @Test
    void probe() {
        var g = ReferenceRecords.generations("kjv-main-f32.jsonl").get(0);
        for (KjvPair pair : new KjvPair[] {KjvPair.f32(), KjvPair.q8()}) {
            for (int rep = 0; rep < 2; rep++) {
                var r = new PlainGenerator(pair.main, SamplerSettings.greedy()).generate(g.promptTokens(), GenerationLimits.of(64));
                var d = new PlainGenerator(pair.draft, SamplerSettings.greedy()).generate(g.promptTokens(), GenerationLimits.of(64));
                var s = new SpeculativeGenerator(pair.main, new ModelDrafter(pair.draft), DraftPolicy.Fixed.always(4), SamplerSettings.greedy()).generate(g.promptTokens(), GenerationLimits.of(64));
                System.out.printf("main %.1f tok/s, draft %.1f tok/s, spec4 %.1f tok/s draft ms %.1f verify ms %.1f passes %d%n", r.stats().tokensPerSecond(), d.stats().tokensPerSecond(), s.stats().tokensPerSecond(), s.stats().draftMillis(), s.stats().verifyMillis(), s.stats().verificationPasses());
            }
            pair.close();
        }
    }
}
