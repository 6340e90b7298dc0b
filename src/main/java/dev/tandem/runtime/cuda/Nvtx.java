package dev.tandem.runtime.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Named NVTX ranges, so that Nsight Systems shows Tandem's phases on the timeline, per model: "verify kjv-main",
 * "draft kjv-draft", "rollback kjv-main". Binds, in this order, Tandem's shim {@code libtandem_nvtx.so}
 * (native-build/build-nvtx.sh: the header-only NVTX 3 API, which reaches the profiler without any other library),
 * CUDA 13's {@code libnvtx3interop.so.1}, or CUDA 12's {@code libnvToolsExt.so.1}. Without any of them, or unless
 * profiling is on (system property {@code tandem.profile=true}, which {@code --profile} sets), every range is a
 * no-op that costs one branch. With a library but no profiler attached, NVTX calls return at once.
 *
 * <p>NVTX ranges nest per OS thread: open and close a range on the same thread (try-with-resources).
 */
public final class Nvtx {
    /** The phases of speculative decoding, as the timeline names them. */
    public enum Phase {
        PREFILL("prefill"), DECODE("decode"), DRAFT("draft"), VERIFY("verify"), ACCEPT("accept"), ROLLBACK("rollback");

        private final String label;

        Phase(String label) { this.label = label; }

        public String label() { return label; }
    }

    /** An open range; {@link #close} pops it. */
    public interface Range extends AutoCloseable {
        @Override
        void close();
    }

    /** The NVTX libraries tried after the shim, by the dynamic loader's search. */
    static final List<String> LIBRARIES = List.of("libnvtx3interop.so.1", "libnvToolsExt.so.1");
    /** native-build/build-nvtx.sh's library: class-path resource {@code /native/libtandem_nvtx.so}. */
    static final String SHIM = "libtandem_nvtx.so";

    private static final Range NO_OP = () -> {};
    private static volatile Nvtx global;

    private final MethodHandle push, pop, mark;
    private final String library;
    private final Map<Phase, MemorySegment> labels = new EnumMap<>(Phase.class);
    private final Range popper;

    /** Ranges through {@code push} ((MemorySegment)int), {@code pop} (()int) and {@code mark} ((MemorySegment)void, or null); all null: off. */
    Nvtx(MethodHandle push, MethodHandle pop, MethodHandle mark, String library) {
        this.push = push;
        this.pop = pop;
        this.mark = mark;
        this.library = library;
        if (push != null) {
            for (Phase p : Phase.values()) labels.put(p, Arena.global().allocateFrom(p.label()));  // C strings, made once
        }
        this.popper = push == null ? NO_OP : this::popRange;
    }

    private static Nvtx off() { return new Nvtx(null, null, null, null); }

    /** The process's ranges: bound when {@code tandem.profile=true} and the shim or an NVTX library is found. */
    public static Nvtx get() {
        Nvtx n = global;
        if (n == null) {
            synchronized (Nvtx.class) {
                if (global == null) {
                    boolean enabled = Boolean.getBoolean("tandem.profile");
                    global = load(enabled, enabled ? shim().orElse(null) : null, LIBRARIES);
                }
                n = global;
            }
        }
        return n;
    }

    /** Makes {@code nvtx} the process's ranges (tests: a recording instance) and returns the previous one. */
    static synchronized Nvtx swapGlobal(Nvtx nvtx) {
        Nvtx previous = global;
        global = nvtx;
        return previous;
    }

    /** Binds the first of {@code libraries} that loads when {@code enabled}; a no-op instance otherwise. */
    static Nvtx load(boolean enabled, List<String> libraries) { return load(enabled, null, libraries); }

    /** Binds the shim at {@code shim} (null: none), else the first of {@code libraries} that loads, when {@code enabled}. */
    static Nvtx load(boolean enabled, Path shim, List<String> libraries) {
        if (!enabled) return off();
        if (shim != null) {
            Nvtx bound = bind(lookup(() -> SymbolLookup.libraryLookup(shim, Arena.global())), shim.toString(),
                    "tandem_nvtx_push", "tandem_nvtx_pop", "tandem_nvtx_mark");
            if (bound != null) return bound;
        }
        for (String name : libraries) {
            Nvtx bound = bind(lookup(() -> SymbolLookup.libraryLookup(name, Arena.global())), name, "nvtxRangePushA", "nvtxRangePop", "nvtxMarkA");
            if (bound != null) return bound;
        }
        return off();
    }

    private static SymbolLookup lookup(java.util.function.Supplier<SymbolLookup> open) {
        try {
            return open.get();
        } catch (IllegalArgumentException | IllegalCallerException notLoadable) {
            return null;
        }
    }

    private static Nvtx bind(SymbolLookup lookup, String library, String pushName, String popName, String markName) {
        if (lookup == null) return null;
        var pushSymbol = lookup.find(pushName);
        var popSymbol = lookup.find(popName);
        if (pushSymbol.isEmpty() || popSymbol.isEmpty()) return null;
        Linker linker = Linker.nativeLinker();
        MethodHandle mark = lookup.find(markName).map(s -> linker.downcallHandle(s, FunctionDescriptor.ofVoid(ValueLayout.ADDRESS))).orElse(null);
        return new Nvtx(linker.downcallHandle(pushSymbol.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS)),
                linker.downcallHandle(popSymbol.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT)), mark, library);
    }

    /**
     * Where the shim is: the system property {@code tandem.nvtxShim}, else the class-path resource (copied to a
     * temporary file, since the loader needs a path), else {@code target/native/} of a source checkout.
     */
    static Optional<Path> shim() {
        String property = System.getProperty("tandem.nvtxShim");
        if (property != null) return Optional.of(Path.of(property)).filter(Files::isRegularFile);
        try (InputStream in = Nvtx.class.getResourceAsStream("/native/" + SHIM)) {
            if (in != null) {
                Path tmp = Files.createTempFile("tandem-nvtx", ".so");
                tmp.toFile().deleteOnExit();
                Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                return Optional.of(tmp);
            }
        } catch (IOException e) {
            // fall through to the checkout's build, then to the NVTX libraries
        }
        Path built = Path.of("target", "native", SHIM).toAbsolutePath();
        return Files.isRegularFile(built) ? Optional.of(built) : Optional.empty();
    }

    /** Whether ranges reach an NVTX library. */
    public boolean isBound() { return push != null; }

    /** The library bound, or a line saying why none is. */
    public String describe() {
        return push != null ? "NVTX ranges through " + library : "NVTX ranges off (no NVTX shim or library, or tandem.profile is not true)";
    }

    /** Opens a range named after {@code phase}. */
    public Range range(Phase phase) {
        if (push == null) return NO_OP;
        pushRange(labels.get(phase));
        return popper;
    }

    /** Opens a range of any name (allocates its C string: for rare ranges, not per token). */
    public Range range(String name) {
        if (push == null) return NO_OP;
        pushRange(Arena.ofAuto().allocateFrom(name));
        return popper;
    }

    /** An instant event named {@code name}, where the library has marks (all three do). */
    public void mark(String name) {
        if (mark == null) return;
        try {
            mark.invokeExact(Arena.ofAuto().allocateFrom(name));
        } catch (Throwable t) {
            throw new IllegalStateException("nvtxMarkA failed: " + t, t);
        }
    }

    /** One model's ranges, "phase model" (e.g. "verify kjv-main"), their names made once. */
    public Ranges forModel(String model) { return new Ranges(model); }

    /** Ranges named per phase and model; as cheap as {@link Nvtx#range(Phase)}. */
    public final class Ranges {
        private final Map<Phase, MemorySegment> names = new EnumMap<>(Phase.class);
        private final String model;

        private Ranges(String model) {
            this.model = model;
            if (push != null) {
                for (Phase p : Phase.values()) names.put(p, Arena.global().allocateFrom(label(p, model)));
            }
        }

        /** Opens the range of {@code phase} for this model. */
        public Range open(Phase phase) {
            if (push == null) return NO_OP;
            pushRange(names.get(phase));
            return popper;
        }

        /** The model's name, as the ranges give it. */
        public String model() { return model; }

        /** Whether ranges reach an NVTX library (callers may skip work made only for ranges). */
        public boolean isBound() { return push != null; }
    }

    /** The range name of {@code phase} for {@code model}: "verify kjv-main". */
    static String label(Phase phase, String model) { return phase.label() + " " + model; }

    private void pushRange(MemorySegment label) {
        try {
            int ignoredDepth = (int) push.invokeExact(label);
        } catch (Throwable t) {
            throw new IllegalStateException("nvtxRangePushA failed: " + t, t);
        }
    }

    private void popRange() {
        try {
            int ignoredDepth = (int) pop.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("nvtxRangePop failed: " + t, t);
        }
    }
}
