package dev.tandem.runtime.cuda;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntSupplier;

/**
 * The host emulation's race check, its counterpart of {@code compute-sanitizer --tool racecheck}: a launch runs
 * first with each block's threads, and the grid's blocks, in the forward order, then again from the same inputs
 * in each other order (reversed, seeded shuffles; see {@code kernels/host/runtime.cpp}), and every byte of every
 * buffer the kernel was given must come out identical. CUDA promises no order between barriers, so a difference is
 * a race.
 *
 * <p>{@link HostKernels} runs every launch this way when the system property {@value #PROPERTY} lists the orders
 * (comma-separated, e.g. {@code reversed,shuffled:1}); {@code mvn verify}'s kernel-sanitizers tests set it.
 */
final class RaceCheck {
    static final String PROPERTY = "tandem.hostKernels.raceCheck";

    /** Sets the emulation's thread order for later launches ({@code tandem_host_set_order}): null, else what is wrong. */
    interface OrderSwitch {
        String set(String order);
    }

    /** A buffer a launch was given, and what to call it in a report (e.g. "argument 2"). */
    record Buffer(String name, MemorySegment memory) {}

    private final List<String> orders;
    private final OrderSwitch orderSwitch;

    RaceCheck(List<String> orders, OrderSwitch orderSwitch) {
        if (orders.isEmpty()) throw new IllegalArgumentException("a race check needs at least one order besides forward");
        this.orders = List.copyOf(orders);
        this.orderSwitch = orderSwitch;
    }

    /** The orders {@value #PROPERTY} asks for; empty when it is unset or blank. */
    static List<String> requestedOrders() {
        String value = System.getProperty(PROPERTY, "").strip();
        if (value.isEmpty()) return List.of();
        return Arrays.stream(value.split(",")).map(String::strip).filter(s -> !s.isEmpty()).toList();
    }

    List<String> orders() { return orders; }

    /**
     * Runs {@code launch} (which returns the emulation's status) in the forward order and then in each other order,
     * restoring {@code buffers} to their contents before the launch each time; returns the first non-zero status.
     *
     * @throws KernelRaceException when some order leaves some buffer different from the forward order
     */
    int launch(String what, List<Buffer> buffers, IntSupplier launch) {
        // The order is the emulation's, process-wide: one checked launch at a time.
        synchronized (RaceCheck.class) {
            List<byte[]> inputs = contents(buffers);
            try {
                switchTo("forward");
                int status = launch.getAsInt();
                if (status != 0) return status;
                List<byte[]> forward = contents(buffers);
                for (String order : orders) {
                    for (int i = 0; i < buffers.size(); i++) MemorySegment.copy(MemorySegment.ofArray(inputs.get(i)), 0, buffers.get(i).memory(), 0, inputs.get(i).length);
                    switchTo(order);
                    status = launch.getAsInt();
                    if (status != 0) return status;
                    compare(what, order, buffers, forward, contents(buffers));
                }
                return 0;
            } finally {
                switchTo("forward");
            }
        }
    }

    private void switchTo(String order) {
        String error = orderSwitch.set(order);
        if (error != null) throw new IllegalArgumentException(PROPERTY + ": " + error);
    }

    private static void compare(String what, String order, List<Buffer> buffers, List<byte[]> forward, List<byte[]> other) {
        for (int i = 0; i < forward.size(); i++) {
            byte[] f = forward.get(i), o = other.get(i);
            int first = Arrays.mismatch(f, o);
            if (first < 0) continue;
            int differing = 0;
            for (int j = first; j < f.length; j++) if (f[j] != o[j]) differing++;
            int word = first & ~3;
            throw new KernelRaceException(what + ": results depend on the order its threads run in (a missing __syncthreads(), "
                    + "a warp-synchronous assumption, or blocks reading each other's results): " + buffers.get(i).name()
                    + " differs between the forward and " + order + " orders in " + differing + " of its " + f.length
                    + " bytes, first at byte " + first + word(" (forward word ", f, word) + word(", " + order + " word ", o, word) + ")");
        }
    }

    private static String word(String label, byte[] bytes, int offset) {
        if (offset + 4 > bytes.length) return label + "-";
        int bits = MemorySegment.ofArray(bytes).get(ValueLayout.JAVA_INT_UNALIGNED, offset);
        return label + String.format("0x%08x", bits);
    }

    private static List<byte[]> contents(List<Buffer> buffers) {
        List<byte[]> out = new ArrayList<>(buffers.size());
        for (Buffer b : buffers) out.add(b.memory().toArray(ValueLayout.JAVA_BYTE));
        return out;
    }
}
