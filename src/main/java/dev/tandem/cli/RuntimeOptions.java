package dev.tandem.cli;

import dev.tandem.engine.Backends;
import dev.tandem.engine.Tandem;
import dev.tandem.runtime.KvType;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Where and how models run. */
final class RuntimeOptions {
    @Option(names = "--backend", defaultValue = "auto", description = "auto, cpu, cuda or cuda-host (default: ${DEFAULT-VALUE}).")
    String backend;

    @Option(names = {"-t", "--threads"}, description = "CPU threads (default: all cores).")
    Integer threads;

    @Option(names = "--kv-type", defaultValue = "f32", description = "K/V cache element type: f32, f16 or bf16 (default: ${DEFAULT-VALUE}).")
    String kvType;

    @Option(names = {"-c", "--ctx"}, description = "Context length (default: the model's, at most 8192); on a GPU, K/V memory for it is checked before loading.")
    Integer context;

    @Option(names = "--profile", description = "Name CUDA phases as NVTX ranges for Nsight Systems, per model: prefill, decode, draft "
            + "(the draft model's passes), verify, accept (the acceptance kernels), rollback (K/V truncated after a rejection), "
            + "e.g. 'verify kjv-main'.")
    boolean profile;

    /**
     * An engine builder for {@code model} on these options' backend, threads and K/V type. {@code --ctx} and
     * {@code --backend} are checked first, as usage errors, and {@code --profile} takes effect; the caller sets the
     * context and the rest.
     */
    Tandem.Builder engineBuilder(Path model) {
        check();
        if (profile) System.setProperty("tandem.profile", "true");
        return Tandem.builder().model(model).backend(backend).threads(threads()).kvType(kv());
    }

    /** --ctx and --backend as usage errors, for a command that checks them before it builds an engine. */
    void check() {
        if (context != null && context < 1) throw new UsageException("--ctx must be at least 1, got " + context);
        try {
            Backends.checkName(backend);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--backend: " + e.getMessage());
        }
    }

    KvType kv() {
        try {
            return KvType.parse(kvType);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--kv-type: " + e.getMessage());
        }
    }

    int threads() {
        return threads != null ? checkThreads(threads) : Runtime.getRuntime().availableProcessors();
    }

    /** Threads beyond this only add switching (a worker per core is what the kernels use): 4 per available core. */
    static int maxThreads() {
        return 4 * Runtime.getRuntime().availableProcessors();
    }

    /** {@code --threads n} checked against [1, {@link #maxThreads()}]. */
    static int checkThreads(int n) {
        int max = maxThreads();
        if (n < 1 || n > max) {
            throw new UsageException("--threads must be in [1, " + max + "] (4 per available core, "
                    + Runtime.getRuntime().availableProcessors() + " cores), got " + n);
        }
        return n;
    }
}
