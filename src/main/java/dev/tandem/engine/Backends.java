package dev.tandem.engine;

import dev.tandem.runtime.Backend;
import dev.tandem.runtime.BackendUnavailableException;

import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.HostKernelsUnavailableException;
import dev.tandem.runtime.cuda.JCudaGpuDriver;
import dev.tandem.runtime.cuda.UnsupportedWeightException;

import java.util.Locale;
import java.util.function.Function;

/** Opens a backend by the name users give ({@code --backend auto|cpu|cuda|cuda-host}). */
public final class Backends {
    public static final String NAMES = "auto, cpu, cuda, cuda-host";

    private Backends() {}

    /**
     * The backend opened and, when {@code auto} fell back to the CPU, the one-line reason
     * (e.g. "CUDA unavailable: libcuda.so.1 not found (no NVIDIA driver installed); using the CPU"), else null.
     */
    public record Selection(Backend backend, String fallbackReason) {}

    /** What {@link #load} made: the backend it ran on, the loader's result, and {@code auto}'s fallback reason (else null). */
    public record Loaded<T>(Backend backend, T value, String fallbackReason) {}

    /**
     * Opens the backend {@code name} names ({@link #select}) and runs {@code load} on it. With {@code auto}, when CUDA
     * was chosen but the models cannot run there for a reason {@link #reasonToLeaveCuda} names (an unsupported GPU, too
     * little device memory, a weight type without a kernel, a CUDA error), the CUDA backend is closed and {@code load}
     * runs again on the CPU, and the fallback reason says why. {@code load} must close what it loaded when it throws,
     * so that closing the backend leaves no device memory behind. Other failures, and any with a backend asked for by
     * name, are thrown as they are.
     */
    public static <T> Loaded<T> load(String name, Function<Backend, T> load) { return load(select(name), isAuto(name), load); }

    /** {@link #load} from a selection made: {@code auto} says whether CUDA may give way to the CPU. */
    static <T> Loaded<T> load(Selection selection, boolean auto, Function<Backend, T> load) {
        Backend backend = selection.backend();
        try {
            return new Loaded<>(backend, load.apply(backend), selection.fallbackReason());
        } catch (RuntimeException e) {
            backend.close();
            String reason = backend.name().equals("cuda") && auto ? reasonToLeaveCuda(e) : null;
            if (reason == null) throw e;
            Backend cpu = new CpuBackend();
            try {
                String line = reason.startsWith("CUDA unavailable") ? reason : "CUDA unavailable: " + reason;
                return new Loaded<>(cpu, load.apply(cpu), line + "; using the CPU");
            } catch (RuntimeException onCpu) {
                cpu.close();
                throw onCpu;
            }
        }
    }

    /**
     * The one-line reason when {@code e} says the models cannot run on this GPU (and might on the CPU), else null.
     * JCuda's own {@code jcuda.CudaException} is matched by class name: loading JCuda classes needs libcuda.so.1.
     */
    public static String reasonToLeaveCuda(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BackendUnavailableException || t instanceof UnsupportedWeightException) return t.getMessage();
            if (t.getClass().getName().equals("jcuda.CudaException")) return "CUDA error: " + t.getMessage();
        }
        return null;
    }

    /** Throws the error {@link #select} gives for a name it does not know, before anything is opened. */
    public static void checkName(String name) {
        String n = name == null ? "auto" : name.trim().toLowerCase(Locale.ROOT);
        if (!java.util.List.of(NAMES.split(", ")).contains(n)) throw unknown(name);
    }

    private static IllegalArgumentException unknown(String name) {
        return new IllegalArgumentException("unknown backend '" + name + "' (known: " + NAMES + ")");
    }

    private static boolean isAuto(String name) { return name == null || name.trim().equalsIgnoreCase("auto"); }

    /** {@link #select}'s backend. */
    public static Backend open(String name) { return select(name).backend(); }

    /**
     * {@code auto}: CUDA when a device passes {@link JCudaGpuDriver#probe()}, else the CPU with the reason;
     * {@code cuda}: the GPU or a {@link BackendUnavailableException} saying what is missing; {@code cuda-host}: the
     * CUDA backend on the host emulation; {@code cpu}: the CPU.
     */
    public static Selection select(String name) {
        String n = name == null ? "auto" : name.trim().toLowerCase(Locale.ROOT);
        switch (n) {
            case "cpu":
                return new Selection(new CpuBackend(), null);
            case "cuda":
                return new Selection(CudaBackend.onDevice(), null);
            case "cuda-host":
                try {
                    return new Selection(CudaBackend.onHost(), null);
                } catch (HostKernelsUnavailableException e) {
                    throw new BackendUnavailableException("cuda-host unavailable: " + e.getMessage(), e);
                }
            case "auto": {
                String reason = JCudaGpuDriver.probe();
                if (reason == null) {
                    try {
                        return new Selection(CudaBackend.onDevice(), null);
                    } catch (RuntimeException e) {
                        reason = e.getMessage();
                    }
                }
                String line = reason.startsWith("CUDA unavailable") ? reason : "CUDA unavailable: " + reason;
                return new Selection(new CpuBackend(), line + "; using the CPU");
            }
            default:
                throw unknown(name);
        }
    }

    /** One line about {@code backend}: the GPU (or its emulation) for the CUDA backends, the threads for the CPU. */
    public static String describe(Backend backend, int threads) {
        return backend instanceof CudaBackend cuda ? cuda.driver().describe() : "CPU, " + threads + (threads == 1 ? " thread" : " threads");
    }

    /** Why {@code cuda} cannot run here, in one line, or null when it can. */
    public static String cudaUnavailableReason() { return JCudaGpuDriver.probe(); }
}
