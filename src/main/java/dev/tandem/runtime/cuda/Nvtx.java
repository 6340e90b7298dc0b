package dev.tandem.runtime.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Named NVTX ranges, so that Nsight Systems shows Tandem's phases on the timeline. Binds {@code nvtxRangePushA} and
 * {@code nvtxRangePop} through FFM from CUDA 13's {@code libnvtx3interop.so.1} or CUDA 12's {@code libnvToolsExt.so.1};
 * without either, or unless profiling is on (system property {@code tandem.profile=true}, which {@code --profile}
 * sets), every range is a no-op that costs one branch.
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

    static final List<String> LIBRARIES = List.of("libnvtx3interop.so.1", "libnvToolsExt.so.1");

    private static final Range NO_OP = () -> {};
    private static volatile Nvtx global;

    private final MethodHandle push, pop;
    private final String library;
    private final Map<Phase, MemorySegment> labels = new EnumMap<>(Phase.class);
    private final Range popper;

    private Nvtx(MethodHandle push, MethodHandle pop, String library) {
        this.push = push;
        this.pop = pop;
        this.library = library;
        if (push != null) {
            for (Phase p : Phase.values()) labels.put(p, Arena.global().allocateFrom(p.label()));  // C strings, made once
        }
        this.popper = push == null ? NO_OP : this::popRange;
    }

    /** The process's ranges: bound when {@code tandem.profile=true} and an NVTX library is found. */
    public static Nvtx get() {
        Nvtx n = global;
        if (n == null) {
            synchronized (Nvtx.class) {
                if (global == null) global = load(Boolean.getBoolean("tandem.profile"), LIBRARIES);
                n = global;
            }
        }
        return n;
    }

    /** Binds the first of {@code libraries} that loads when {@code enabled}; a no-op instance otherwise. */
    static Nvtx load(boolean enabled, List<String> libraries) {
        if (!enabled) return new Nvtx(null, null, null);
        Linker linker = Linker.nativeLinker();
        for (String name : libraries) {
            SymbolLookup lookup;
            try {
                lookup = SymbolLookup.libraryLookup(name, Arena.global());
            } catch (IllegalArgumentException notFound) {
                continue;
            }
            var pushSymbol = lookup.find("nvtxRangePushA");
            var popSymbol = lookup.find("nvtxRangePop");
            if (pushSymbol.isEmpty() || popSymbol.isEmpty()) continue;
            return new Nvtx(linker.downcallHandle(pushSymbol.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS)),
                    linker.downcallHandle(popSymbol.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT)), name);
        }
        return new Nvtx(null, null, null);
    }

    /** Whether ranges reach an NVTX library. */
    public boolean isBound() { return push != null; }

    /** The library bound, or a line saying why none is. */
    public String describe() { return push != null ? "NVTX ranges through " + library : "NVTX ranges off (no library, or tandem.profile is not true)"; }

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
