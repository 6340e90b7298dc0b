package dev.tandem.runtime.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntSupplier;

/**
 * The kernels of {@code kernels/*.cu} run on the CPU through the host-emulation library
 * ({@code libtandem_host_kernels.so}, built by {@code native-build/build-host.sh}), called through FFM.
 *
 * <p>"Device memory" here is any native {@link MemorySegment}. A launch returns when the whole grid has run.
 * The library is found at the system property {@code tandem.hostKernels}, else as the class-path resource
 * {@code /native/libtandem_host_kernels.so}, else at {@code target/native/libtandem_host_kernels.so}.
 * With {@value RaceCheck#PROPERTY} set, every launch is run under each thread order it lists and checked for races
 * ({@link RaceCheck}).
 */
public final class HostKernels {
    public static final String LIBRARY = "libtandem_host_kernels.so";

    private static final Object LOCK = new Object();
    private static HostKernels instance;
    private static String unavailableReason;

    private final Map<Kernel, MethodHandle> handles = new HashMap<>();
    private final MethodHandle lastError, gemmEx, gemmError;
    private final Path library;
    private final RaceCheck raceCheck;  // null unless asked for

    private HostKernels(Path library) {
        this.library = library;
        Linker linker = Linker.nativeLinker();
        SymbolLookup lookup = SymbolLookup.libraryLookup(library, Arena.global());
        for (Kernel k : Kernel.all()) {
            MemorySegment symbol = lookup.find(k.hostSymbol()).orElseThrow(() -> new HostKernelsUnavailableException(
                    library + " has no entry point " + k.hostSymbol() + " (stale build? run native-build/build-host.sh)"));
            handles.put(k, linker.downcallHandle(symbol, descriptor(k)));
        }
        lastError = linker.downcallHandle(lookup.find("tandem_host_last_error").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS.withTargetLayout(MemoryLayout.sequenceLayout(4096, ValueLayout.JAVA_BYTE))));
        MemorySegment gemm = lookup.find("tandem_host_gemm_ex").orElseThrow(() -> new HostKernelsUnavailableException(
                library + " has no entry point tandem_host_gemm_ex (stale build? run native-build/build-host.sh)"));
        ValueLayout i = ValueLayout.JAVA_INT, f = ValueLayout.JAVA_FLOAT, p = ValueLayout.ADDRESS;
        gemmEx = linker.downcallHandle(gemm, FunctionDescriptor.of(i, i, i, i, i, i, f, p, i, i, p, i, i, f, p, i));
        gemmError = linker.downcallHandle(lookup.find("tandem_host_gemm_error").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.ADDRESS.withTargetLayout(MemoryLayout.sequenceLayout(4096, ValueLayout.JAVA_BYTE))));
        List<String> orders = RaceCheck.requestedOrders();
        raceCheck = orders.isEmpty() ? null : new RaceCheck(orders, orderSwitch(linker, lookup, library, lastError));
    }

    /** {@code tandem_host_set_order} of a host-emulation library (the kernels', or a test's), for {@link RaceCheck}. */
    static RaceCheck.OrderSwitch orderSwitch(Linker linker, SymbolLookup lookup, Path library, MethodHandle lastError) {
        MethodHandle set = linker.downcallHandle(lookup.find("tandem_host_set_order").orElseThrow(() -> new HostKernelsUnavailableException(
                library + " has no entry point tandem_host_set_order (stale build? run native-build/build-host.sh)")),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        return order -> {
            try (Arena arena = Arena.ofConfined()) {
                if ((int) set.invokeExact(arena.allocateFrom(order)) == 0) return null;
                return ((MemorySegment) lastError.invokeExact()).getString(0);
            } catch (Throwable t) {
                throw new KernelLaunchException("tandem_host_set_order: native call failed: " + t, t);
            }
        };
    }

    /** The thread orders every launch is checked under besides the forward one; empty when the race check is off. */
    public List<String> raceCheckOrders() { return raceCheck == null ? List.of() : raceCheck.orders(); }

    /** The library, loaded once; throws {@link HostKernelsUnavailableException} saying where it looked. */
    public static HostKernels get() {
        synchronized (LOCK) {
            if (instance != null) return instance;
            if (unavailableReason != null) throw new HostKernelsUnavailableException(unavailableReason);
            try {
                instance = new HostKernels(locate());
                return instance;
            } catch (HostKernelsUnavailableException e) {
                unavailableReason = e.getMessage();
                throw e;
            } catch (RuntimeException | IOException e) {
                unavailableReason = "cannot load the host-emulation kernels: " + e;
                throw new HostKernelsUnavailableException(unavailableReason, e);
            }
        }
    }

    /** Whether {@link #get()} succeeds; when not, {@link #unavailableReason()} says why. */
    public static boolean isAvailable() {
        try {
            get();
            return true;
        } catch (HostKernelsUnavailableException e) {
            return false;
        }
    }

    public static String unavailableReason() {
        synchronized (LOCK) {
            return unavailableReason == null ? "available" : unavailableReason;
        }
    }

    public Path library() { return library; }

    /**
     * Runs {@code kernel} over the grid {@code dims}; {@code args} follow {@link Kernel#args()}: a native
     * {@link MemorySegment} (or {@link MemorySegment#NULL}) for each pointer, an {@link Integer} for each int, a
     * {@link Float} for each float.
     *
     * @throws KernelLaunchException when the emulation refuses the launch (block too large, too much shared
     *     memory) or finds the kernel's threads deadlocked at divergent barriers
     */
    public void launch(Kernel kernel, LaunchDims dims, Object... args) {
        List<Kernel.Arg> kinds = kernel.args();
        if (args.length != kinds.size()) {
            throw new IllegalArgumentException(kernel.cudaName() + " takes " + kinds.size() + " arguments, got " + args.length);
        }
        Object[] call = new Object[7 + args.length];
        List<RaceCheck.Buffer> buffers = new ArrayList<>();
        call[0] = dims.gridX();
        call[1] = dims.gridY();
        call[2] = dims.gridZ();
        call[3] = dims.blockX();
        call[4] = dims.blockY();
        call[5] = dims.blockZ();
        call[6] = dims.sharedBytes();
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            boolean ok = switch (kinds.get(i)) {
                case P -> a instanceof MemorySegment s && (s.isNative() || s.equals(MemorySegment.NULL));
                case I -> a instanceof Integer;
                case F -> a instanceof Float;
            };
            if (!ok) {
                throw new IllegalArgumentException(kernel.cudaName() + " argument " + i + " must be "
                        + switch (kinds.get(i)) {
                            case P -> "a native MemorySegment";
                            case I -> "an Integer";
                            case F -> "a Float";
                        } + ", got " + (a == null ? "null" : a.getClass().getSimpleName()));
            }
            call[7 + i] = a;
            if (a instanceof MemorySegment s && !s.equals(MemorySegment.NULL)) buffers.add(new RaceCheck.Buffer("argument " + i, s));
        }
        MethodHandle handle = handles.get(kernel);
        IntSupplier run = () -> {
            try {
                return (int) handle.invokeWithArguments(call);
            } catch (Throwable t) {
                throw new KernelLaunchException(kernel.cudaName() + ": native call failed: " + t, t);
            }
        };
        int status = raceCheck == null ? run.getAsInt() : raceCheck.launch(kernel.cudaName() + " " + dims, buffers, run);
        if (status != 0) {
            throw new KernelLaunchException(kernel.cudaName() + " " + dims + ": " + lastError());
        }
    }

    /**
     * cublasGemmEx's arguments and meaning, emulated (see {@code kernels/host/gemm.cpp}): column-major
     * C = alpha·op(A)·op(B) + beta·C with A, B 16-bit ({@code type}: CUDA_R_16F 2 or CUDA_R_16BF 14), C FP32,
     * FP32 accumulation. Operations: 0 = N, 1 = T.
     */
    public void gemmEx(int transa, int transb, int m, int n, int k, float alpha, MemorySegment a, int type, int lda,
                       MemorySegment b, int ldb, float beta, MemorySegment c, int ldc) {
        int status;
        try {
            status = (int) gemmEx.invokeExact(transa, transb, m, n, k, alpha, a, type, lda, b, type, ldb, beta, c, ldc);
        } catch (Throwable t) {
            throw new KernelLaunchException("gemmEx: native call failed: " + t, t);
        }
        if (status != 0) {
            String message;
            try {
                message = ((MemorySegment) gemmError.invokeExact()).getString(0);
            } catch (Throwable t) {
                message = "(no message: " + t + ")";
            }
            throw new KernelLaunchException(message + " (status " + status + ")");
        }
    }

    private String lastError() {
        try {
            return ((MemorySegment) lastError.invokeExact()).getString(0);
        } catch (Throwable t) {
            return "(no message: " + t + ")";
        }
    }

    private static FunctionDescriptor descriptor(Kernel k) {
        List<MemoryLayout> params = new ArrayList<>();
        for (int i = 0; i < 7; i++) params.add(ValueLayout.JAVA_INT);  // grid xyz, block xyz, shared bytes
        for (Kernel.Arg a : k.args()) {
            params.add(switch (a) {
                case P -> ValueLayout.ADDRESS;
                case I -> ValueLayout.JAVA_INT;
                case F -> ValueLayout.JAVA_FLOAT;
            });
        }
        return FunctionDescriptor.of(ValueLayout.JAVA_INT, params.toArray(MemoryLayout[]::new));
    }

    private static Path locate() throws IOException {
        String property = System.getProperty("tandem.hostKernels");
        if (property != null) {
            Path p = Path.of(property);
            if (!Files.isRegularFile(p)) throw new HostKernelsUnavailableException("tandem.hostKernels=" + p + " is not a file");
            return p;
        }
        try (InputStream in = HostKernels.class.getResourceAsStream("/native/" + LIBRARY)) {
            if (in != null) {
                Path tmp = Files.createTempFile("tandem-host-kernels", ".so");
                tmp.toFile().deleteOnExit();
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                return tmp;
            }
        }
        Path built = Path.of("target", "native", LIBRARY);
        if (Files.isRegularFile(built)) return built.toAbsolutePath();
        throw new HostKernelsUnavailableException("the host-emulation kernels " + LIBRARY + " were not found (looked at "
                + "-Dtandem.hostKernels, class-path /native/" + LIBRARY + ", " + built.toAbsolutePath()
                + "); build them with native-build/build-host.sh (needs g++)");
    }
}
