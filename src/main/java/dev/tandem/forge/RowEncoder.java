package dev.tandem.forge;

import dev.tandem.model.TensorType;
import dev.tandem.model.gguf.GgufWriter;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.util.stream.IntStream;

/**
 * A tensor's bytes produced row by row: each row is filled as floats by a {@link RowSource} and encoded into
 * {@code type}. Rows are made in chunks of about a megabyte of floats, several chunks at a time on all cores,
 * and written in order — so memory stays bounded whatever the tensor's size, and the bytes do not depend on the
 * number of threads (each row's values depend only on its index).
 */
final class RowEncoder implements GgufWriter.TensorData {
    /** Fills {@code dst[off .. off + columns)} with row {@code row}'s values. Called concurrently for different rows. */
    @FunctionalInterface
    interface RowSource {
        void fill(int row, float[] dst, int off);
    }

    private static final int CHUNK_ELEMENTS = 1 << 18;

    private final TensorType type;
    private final int rows;
    private final int columns;
    private final RowSource source;

    RowEncoder(TensorType type, int rows, int columns, RowSource source) {
        this.type = type;
        this.rows = rows;
        this.columns = columns;
        this.source = source;
    }

    @Override
    public void writeTo(GgufWriter.TensorSink sink) throws IOException {
        int rowsPerChunk = Math.max(1, CHUNK_ELEMENTS / columns);
        int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
        int parallel = Math.min(chunks, Runtime.getRuntime().availableProcessors());
        long rowBytes = type.bytesFor(columns);
        float[][] values = new float[parallel][rowsPerChunk * columns];
        byte[][] encoded = new byte[parallel][Math.toIntExact(rowBytes * rowsPerChunk)];
        for (int first = 0; first < chunks; first += parallel) {
            int batch = Math.min(parallel, chunks - first);
            int base = first;
            IntStream.range(0, batch).parallel().forEach(slot -> encode(base + slot, rowsPerChunk, values[slot], encoded[slot]));
            for (int slot = 0; slot < batch; slot++) {
                int chunkRows = Math.min(rowsPerChunk, rows - (first + slot) * rowsPerChunk);
                sink.write(MemorySegment.ofArray(encoded[slot]).asSlice(0, chunkRows * rowBytes));
            }
        }
    }

    private void encode(int chunk, int rowsPerChunk, float[] values, byte[] encoded) {
        int firstRow = chunk * rowsPerChunk;
        int chunkRows = Math.min(rowsPerChunk, rows - firstRow);
        MemorySegment out = MemorySegment.ofArray(encoded);
        for (int r = 0; r < chunkRows; r++) source.fill(firstRow + r, values, r * columns);
        type.quantize(values, 0, chunkRows * columns, out, 0);
    }
}
