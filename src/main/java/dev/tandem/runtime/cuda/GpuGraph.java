package dev.tandem.runtime.cuda;

/**
 * A stream's captured work (a CUDA graph): the same kernels, copies and arguments, replayed as one launch. Device
 * pointers and scalar arguments are fixed at capture; the contents of the buffers they point to are read at
 * replay, so a pass whose shapes did not change is replayed after staging its new token ids and positions.
 */
public interface GpuGraph extends AutoCloseable {
    @Override
    void close();
}
