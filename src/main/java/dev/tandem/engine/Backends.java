package dev.tandem.engine;

import dev.tandem.runtime.Backend;
import dev.tandem.runtime.BackendUnavailableException;

import dev.tandem.runtime.cpu.CpuBackend;
import dev.tandem.runtime.cuda.CudaBackend;
import dev.tandem.runtime.cuda.HostKernelsUnavailableException;
import dev.tandem.runtime.cuda.JCudaGpuDriver;

import java.util.Locale;

/** Opens a backend by the name users give ({@code --backend auto|cpu|cuda|cuda-host}). */
public final class Backends {
    public static final String NAMES = "auto, cpu, cuda, cuda-host";

    private Backends() {}

    /**
     * The backend opened and, when {@code auto} fell back to the CPU, the one-line reason
     * (e.g. "CUDA unavailable: libcuda.so.1 not found (no NVIDIA driver installed); using the CPU"), else null.
     */
    public record Selection(Backend backend, String fallbackReason) {}

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
                throw new IllegalArgumentException("unknown backend '" + name + "' (known: " + NAMES + ")");
        }
    }

    /** Why {@code cuda} cannot run here, in one line, or null when it can. */
    public static String cudaUnavailableReason() { return JCudaGpuDriver.probe(); }
}
