package dev.tandem.runtime.cuda;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A model's CUDA graphs of passes: each pass shape captured the first time it is seen and replayed after, which
 * saves the launch overhead of a few hundred kernels per pass. A graph fixes everything its key holds and the
 * addresses of the buffers it was captured with, so whoever replaces such a buffer drops the graphs first.
 */
final class PassGraphs implements AutoCloseable {
    /**
     * What a captured pass depends on besides the buffers it was captured with: the cache, the chunks with their
     * runs, table offsets and attention splits, the logit rows, greedy verification or not, and the sampling step.
     */
    record Key(CudaKvCache kv, List<PassLayout.Chunk> chunks, List<Integer> logitRows, boolean verify, CudaSampling.Step sampling) {}

    private static final int MAX_GRAPHS = 64;

    private final GpuDriver driver;
    private final GpuStream stream;
    private final Map<Key, GpuGraph> graphs = new HashMap<>();
    private boolean enabled;
    private long captures, launches;

    /** Graphs are on unless {@code tandem.cudaGraphs=false}, or kernel profiling is on (it cannot time launches inside a graph). */
    PassGraphs(GpuDriver driver, GpuStream stream) {
        this.driver = driver;
        this.stream = stream;
        this.enabled = Boolean.parseBoolean(System.getProperty("tandem.cudaGraphs", Boolean.toString(!(driver instanceof KernelProfile))));
    }

    boolean enabled() { return enabled; }

    /** Turns graphs on or off; off drops those captured. */
    void enable(boolean on) {
        enabled = on;
        if (!on) drop();
    }

    /**
     * Launches the graph of {@code key}, capturing {@code capture}'s work first when there is none. A driver that
     * cannot capture still runs the pass, through {@code direct}, and graphs go off: they only save launch overhead.
     */
    void run(Key key, Runnable capture, Runnable direct) {
        GpuGraph graph = graphs.get(key);
        if (graph == null) {
            if (graphs.size() >= MAX_GRAPHS) drop();
            try {
                graph = driver.capture(stream, capture);
            } catch (RuntimeException e) {
                System.err.println("tandem: CUDA graph capture failed (" + e.getMessage() + "); running passes without graphs");
                enable(false);
                direct.run();
                return;
            }
            graphs.put(key, graph);
            captures++;
        }
        driver.launch(graph, stream);
        launches++;
    }

    /** Graphs captured and graph launches so far. */
    long[] counts() { return new long[] {captures, launches}; }

    /** Forgets every graph (one of the buffers they captured is about to be replaced). */
    void drop() {
        for (GpuGraph g : graphs.values()) g.close();
        graphs.clear();
    }

    @Override
    public void close() { drop(); }
}
