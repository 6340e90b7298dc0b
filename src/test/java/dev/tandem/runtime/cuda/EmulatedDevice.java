package dev.tandem.runtime.cuda;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The emulated CUDA driver's own controls, for tests that run the real GPU path on it (the pom's
 * {@code emulated-cuda} run): fault injection and what it counts. Only usable where {@link #isActive()}.
 */
public final class EmulatedDevice {
    private EmulatedDevice() {}

    /** Whether this JVM was given the emulated driver and it loads (else: why not, from the probe). */
    public static boolean isActive() { return EmulatedCuda.directory() != null && JCudaGpuDriver.probe() == null; }

    public static String whyNot() {
        return EmulatedCuda.directory() == null ? "-D" + EmulatedCuda.PROPERTY + " not set (only the emulated-cuda test run sets it)"
                : "emulated driver unusable: " + JCudaGpuDriver.probe();
    }

    /** The {@code n}th launch run from now (1: the next) faults as an illegal address; 0 cancels. */
    public static void injectFault(long n) { invoke("tandem_emulated_inject_fault", FunctionDescriptor.ofVoid(ValueLayout.JAVA_LONG), n); }

    /** Kernel launches run so far, in graphs too. */
    public static long launches() { return (long) invoke("tandem_emulated_launches", FunctionDescriptor.of(ValueLayout.JAVA_LONG)); }

    /** Graphs captured and not yet destroyed. */
    public static long liveGraphs() { return (long) invoke("tandem_emulated_live_graphs", FunctionDescriptor.of(ValueLayout.JAVA_LONG)); }

    private static Object invoke(String name, FunctionDescriptor descriptor, Object... args) {
        MethodHandle h = Linker.nativeLinker().downcallHandle(EmulatedCuda.load().find(name).orElseThrow(), descriptor);
        try {
            return h.invokeWithArguments(args);
        } catch (Throwable t) {
            throw new IllegalStateException(name + ": " + t, t);
        }
    }
}
