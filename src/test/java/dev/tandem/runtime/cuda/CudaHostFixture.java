package dev.tandem.runtime.cuda;

import dev.tandem.model.ModelFile;
import dev.tandem.runtime.LoadOptions;
import dev.tandem.testing.ReferenceRecords;
import dev.tandem.testing.ReferenceRecords.Generation;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The CUDA backend over the host emulation, with shared KJV models loaded on it (default options), for a test
 * class: opened before its tests, closed after them, the class skipped when the emulation library was not built.
 * <pre>{@code @RegisterExtension static final CudaHostFixture HOST = new CudaHostFixture("kjv-draft-f32.gguf");}</pre>
 * With no model named it holds the backend only.
 */
final class CudaHostFixture implements BeforeAllCallback, AfterAllCallback {
    private final Supplier<CudaBackend> backend;
    private final List<String> ggufs;
    private final List<ModelFile> files = new ArrayList<>();
    private final List<CudaModel> models = new ArrayList<>();
    private CudaBackend cuda;

    /** {@link CudaBackend#onHost()} (host GEMM, kernel profiling when asked) with these models of {@code models/kjv}. */
    CudaHostFixture(String... ggufs) {
        this(CudaBackend::onHost, ggufs);
    }

    /** Another backend over the emulation, e.g. {@code () -> new CudaBackend(new HostGpuDriver())} to hold its driver. */
    CudaHostFixture(Supplier<CudaBackend> backend, String... ggufs) {
        this.backend = backend;
        this.ggufs = List.of(ggufs);
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        assumeTrue(HostKernels.isAvailable(), () -> "host-emulation kernels not built: " + HostKernels.unavailableReason());
        cuda = backend.get();
        for (String gguf : ggufs) {
            ModelFile file = ModelFile.open(SharedData.kjv(gguf));
            files.add(file);
            models.add((CudaModel) cuda.load(file, LoadOptions.defaults()));
        }
    }

    @Override
    public void afterAll(ExtensionContext context) {
        // Models before their files, everything before the backend; JUnit calls this even when beforeAll failed half way.
        for (CudaModel m : models.reversed()) m.close();
        for (ModelFile f : files.reversed()) f.close();
        if (cuda != null) cuda.close();
        models.clear();
        files.clear();
    }

    CudaBackend cuda() {
        return cuda;
    }

    /** The first model named. */
    CudaModel model() {
        return models.getFirst();
    }

    CudaModel model(String gguf) {
        int i = ggufs.indexOf(gguf);
        if (i < 0) throw new IllegalArgumentException(gguf + " is not one of this fixture's models " + ggufs);
        return models.get(i);
    }

    /** The reference engine's greedy generations for the first model named ({@code kjv-x.gguf}: {@code generate/kjv-x.jsonl}). */
    List<Generation> references() {
        return ReferenceRecords.generations(ggufs.getFirst().replaceFirst("\\.gguf$", ".jsonl"));
    }
}
