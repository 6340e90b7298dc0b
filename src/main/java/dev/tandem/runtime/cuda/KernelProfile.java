package dev.tandem.runtime.cuda;

import dev.tandem.model.TensorType;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A profiling {@link GpuDriver}: every kernel launch is bracketed by two events on its stream, and each kernel's
 * time and the bytes it must move (its reads and writes of device memory, from its arguments; see
 * {@link #bytesMoved}) add up per kernel. {@link #report} prints, per kernel, launches, time and achieved bandwidth
 * beside the device's own copy bandwidth (a timed device-to-device copy), so that a kernel far below the copy
 * rate stands out. Events around every launch serialise nothing but cost time: a profiling mode, not for
 * measuring speed. Launches inside a CUDA graph capture are not profiled.
 *
 * <p>Turned on by the system property {@code tandem.kernelProfile}: {@code true} prints the table to standard
 * error when the backend closes, any other value is a file to write it to.
 */
public final class KernelProfile extends ForwardingGpuDriver {
    private final Map<Kernel, long[]> launchesAndBytes = new HashMap<>();
    private final Map<Kernel, double[]> millis = new HashMap<>();
    private final Deque<Pending> pending = new ArrayDeque<>();
    private boolean capturing;

    private record Pending(Kernel kernel, long bytes, GpuEvent start, GpuEvent end) {}

    public KernelProfile(GpuDriver target) { super(target); }

    /** {@code driver} wrapped when {@code tandem.kernelProfile} is set, else {@code driver}. */
    static GpuDriver wrapIfAsked(GpuDriver driver) {
        String p = System.getProperty("tandem.kernelProfile");
        return p == null || p.isBlank() || p.equals("false") ? driver : new KernelProfile(driver);
    }

    /** Writes the table where {@code tandem.kernelProfile} says (standard error for "true"). */
    void reportAsAsked() {
        String p = System.getProperty("tandem.kernelProfile", "true");
        String table = report();
        if (p.equals("true")) {
            System.err.print(table);
            return;
        }
        try {
            Files.writeString(Path.of(p), table);
        } catch (IOException e) {
            throw new UncheckedIOException("tandem.kernelProfile: cannot write " + p, e);
        }
    }

    /**
     * Bytes of device memory {@code kernel} reads and writes at least, from its arguments (each input read once,
     * each output written once); 0 where the traffic depends on data the host does not see (attention reads as
     * many cached positions as the rows' positions, on the device), which leaves the bandwidth column empty.
     */
    static long bytesMoved(Kernel kernel, LaunchDims dims, Object[] args) {
        String name = kernel.cudaName();
        if (name.startsWith("matvec_swiglu_")) {
            long k = (Integer) args[4], n = (Integer) args[5], r = (Integer) args[6];
            return 2 * n * rowBytes(type(name, "matvec_swiglu_"), k) + r * k * 4 + r * n * 4;
        }
        if (name.startsWith("matvec_")) {
            long k = (Integer) args[10], n = (long) (Integer) args[11] + (Integer) args[12] + (Integer) args[13], r = (Integer) args[14];
            return n * rowBytes(type(name, "matvec_"), k) + r * k * 4 + r * n * 4;
        }
        if (name.startsWith("embedding_")) {
            long k = (Integer) args[3], r = dims.gridX();
            return r * (rowBytes(type(name, "embedding_"), k) + 4 + k * 4);
        }
        if (name.startsWith("dequantize16_")) {
            long k = (Integer) args[2], r = dims.gridX();
            return r * (rowBytes(type(name, "dequantize16_"), k) + k * 2);
        }
        long[] a = new long[args.length];
        for (int i = 0; i < args.length; i++) if (args[i] instanceof Integer v) a[i] = v;
        return switch (name) {
            case "rmsnorm" -> dims.gridX() * a[3] * 8 + a[3] * 4;
            case "rmsnorm_residual" -> dims.gridX() * a[4] * 16 + a[4] * 4;
            case "swiglu" -> 12L * a[3];
            case "bias_add" -> 8L * a[3] + 4L * a[2];
            case "narrow16" -> 6L * a[2];
            case "rope" -> 8 * a[3] * a[4] * a[6] + 4 * a[3];
            case "argmax" -> dims.gridX() * (4L * a[3] + 8);
            case "sample_probs" -> dims.gridX() * 8L * a[2];
            default -> 0;
        };
    }

    /** The weight type in a kernel name: {@code matvec_q8_0_r5} with prefix {@code matvec_} is Q8_0. */
    private static TensorType type(String name, String prefix) {
        return TensorType.valueOf(name.substring(prefix.length()).replaceFirst("_r[0-9]+$", "").toUpperCase(Locale.ROOT));
    }

    /** Bytes of one stored row of {@code k} elements. */
    static long rowBytes(TensorType type, long k) {
        return switch (type) {
            case F32 -> 4 * k;
            case F16, BF16 -> 2 * k;
            case Q8_0 -> k / 32 * 34;
            case Q4_0 -> k / 32 * 18;
            case Q4_K -> k / 256 * 144;
            case Q5_K -> k / 256 * 176;
            case Q6_K -> k / 256 * 210;
            default -> 0;
        };
    }

    @Override
    public void launch(Kernel kernel, LaunchDims dims, GpuStream stream, Object... args) {
        if (capturing) {
            target.launch(kernel, dims, stream, args);
            return;
        }
        GpuEvent start = target.createEvent(), end = target.createEvent();
        target.record(start, stream);
        target.launch(kernel, dims, stream, args);
        target.record(end, stream);
        synchronized (this) {
            pending.add(new Pending(kernel, bytesMoved(kernel, dims, args), start, end));
            if (pending.size() > 4096) fold(false);
        }
    }

    /** Adds finished launches (all of them, waiting, when {@code all}) to the totals and frees their events. */
    private void fold(boolean all) {
        while (!pending.isEmpty()) {
            Pending p = pending.peek();
            if (!all && !target.isDone(p.end())) return;
            pending.poll();
            if (all) {
                while (!target.isDone(p.end())) Thread.onSpinWait();
            }
            long[] lb = launchesAndBytes.computeIfAbsent(p.kernel(), k -> new long[2]);
            lb[0]++;
            lb[1] += p.bytes();
            millis.computeIfAbsent(p.kernel(), k -> new double[1])[0] += target.elapsedMillis(p.start(), p.end());
            p.start().close();
            p.end().close();
        }
    }

    /**
     * The table: the device's copy bandwidth, then per kernel (slowest total first) launches, total and mean time,
     * bytes moved per launch, achieved GB/s and its share of the copy bandwidth.
     */
    public synchronized String report() {
        fold(true);
        double copy = copyBandwidth();
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("device copy bandwidth: %.1f GB/s (device-to-device copy of 64 MiB, read + write)%n", copy));
        sb.append(String.format("%-24s %9s %11s %10s %12s %9s %8s%n", "kernel", "launches", "total ms", "mean us", "bytes/launch", "GB/s", "of copy"));
        List<Kernel> kernels = new ArrayList<>(millis.keySet());
        kernels.sort((a, b) -> Double.compare(millis.get(b)[0], millis.get(a)[0]));
        for (Kernel k : kernels) {
            long launches = launchesAndBytes.get(k)[0], bytes = launchesAndBytes.get(k)[1];
            double ms = millis.get(k)[0];
            String rate = "-", share = "-";
            if (bytes > 0 && ms > 0) {
                double gbs = bytes / (ms * 1e-3) / 1e9;
                rate = String.format(gbs >= 100 ? "%.0f" : "%.3g", gbs);   // the emulation reaches only MB/s
                share = copy > 0 ? String.format("%.0f%%", 100 * gbs / copy) : "-";
            }
            sb.append(String.format("%-24s %9d %11.3f %10.1f %12s %9s %8s%n", k.cudaName(), launches, ms, 1000 * ms / launches,
                    bytes > 0 ? Long.toString(bytes / launches) : "-", rate, share));
        }
        return sb.toString();
    }

    /** GB/s of a timed device-to-device copy (bytes read plus bytes written), the best of three. */
    private double copyBandwidth() {
        long bytes = 64L << 20;
        try (GpuStream s = target.createStream(); DeviceBuffer a = target.allocate(bytes); DeviceBuffer b = target.allocate(bytes);
             GpuEvent start = target.createEvent(); GpuEvent end = target.createEvent()) {
            double best = 0;
            for (int i = 0; i < 4; i++) {
                target.record(start, s);
                target.copyOnDevice(b, a, s);
                target.record(end, s);
                target.synchronize(s);
                double ms = target.elapsedMillis(start, end);
                if (i > 0 && ms > 0) best = Math.max(best, 2.0 * bytes / (ms * 1e-3) / 1e9);  // the first copy warms up
            }
            return best;
        } catch (Exception e) {
            return 0;
        }
    }

    @Override
    public GpuGraph capture(GpuStream stream, Runnable enqueue) {
        capturing = true;
        try {
            return target.capture(stream, enqueue);
        } finally {
            capturing = false;
        }
    }

    @Override public String describe() { return target.describe() + ", kernel profiling on"; }
}
