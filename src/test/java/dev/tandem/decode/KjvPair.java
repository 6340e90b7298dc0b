package dev.tandem.decode;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.runtime.LoadedModel;
import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.testing.SharedData;

/** The KJV main and draft models on the CPU backend (one thread), opened once per test class. */
final class KjvPair implements AutoCloseable {
    /** One thread: the suite shares a small machine, and spinning workers of two models compete for it. */
    static final int THREADS = 1;
    final ModelFile mainFile, draftFile;
    final LoadedModel main, draft;

    KjvPair(String mainName, String draftName) {
        mainFile = ModelFile.open(SharedData.kjv(mainName));
        draftFile = ModelFile.open(SharedData.kjv(draftName));
        CpuBackend backend = new CpuBackend();
        main = backend.load(mainFile, LoadOptions.defaults().withThreads(THREADS));
        draft = backend.load(draftFile, LoadOptions.defaults().withThreads(THREADS));
    }

    static KjvPair f32() { return new KjvPair("kjv-main-f32.gguf", "kjv-draft-f32.gguf"); }

    static KjvPair q8() { return new KjvPair("kjv-main-q8_0.gguf", "kjv-draft-q8_0.gguf"); }

    @Override
    public void close() {
        main.close();
        draft.close();
        mainFile.close();
        draftFile.close();
    }
}
