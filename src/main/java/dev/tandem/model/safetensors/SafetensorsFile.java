package dev.tandem.model.safetensors;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.tandem.model.ModelFormatException;
import dev.tandem.model.ModelLimits;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One {@code .safetensors} file, mapped: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape (outermost first) and byte range, then the data. Tensors are returned in ggml order
 * (innermost dimension first), like every {@link Tensor}.
 */
public final class SafetensorsFile implements AutoCloseable {
    private final Path path;
    private final Arena arena;
    private final Map<String, Tensor> tensors;

    private SafetensorsFile(Path path, Arena arena, MemorySegment file) {
        this.path = path;
        this.arena = arena;
        if (file.byteSize() < 8) throw new ModelFormatException(path, "truncated safetensors file (" + file.byteSize() + " bytes)");
        long headerLength = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
        if (headerLength <= 0 || headerLength > file.byteSize() - 8 || headerLength > 100_000_000) {
            throw new ModelFormatException(path, "not a safetensors file (header length " + headerLength + " for a file of " + file.byteSize() + " bytes)");
        }
        JsonNode header;
        try {
            header = new ObjectMapper().readTree(file.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE));
        } catch (IOException e) {
            throw new ModelFormatException(path, "unreadable safetensors header: " + e.getMessage());
        }
        if (!header.isObject()) throw new ModelFormatException(path, "safetensors header should be a JSON object");
        long dataStart = 8 + headerLength;
        Map<String, Tensor> ts = new LinkedHashMap<>();
        // Checked whole before any tensor is made: sizes, then extents inside the data and not overlapping.
        List<ModelLimits.Extent> extents = new ArrayList<>();
        List<TensorType> types = new ArrayList<>();
        List<long[]> shapes = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) continue;
            String name = e.getKey();
            JsonNode info = e.getValue();
            TensorType type = switch (info.path("dtype").asText()) {
                case "F32" -> TensorType.F32;
                case "F16" -> TensorType.F16;
                case "BF16" -> TensorType.BF16;
                default -> throw new ModelFormatException(path, "tensor '" + name + "' has unsupported dtype '" + info.path("dtype").asText() + "' (supported: F32, F16, BF16)");
            };
            JsonNode shapeNode = info.path("shape");
            JsonNode offsets = info.path("data_offsets");
            if (!shapeNode.isArray() || shapeNode.size() > 4 || !offsets.isArray() || offsets.size() != 2) {
                throw new ModelFormatException(path, "tensor '" + name + "' has a malformed header entry (needs 'shape', an array of"
                        + " at most 4 sizes, and 'data_offsets', an array of 2)");
            }
            long[] shape = new long[Math.max(1, shapeNode.size())];
            shape[0] = 1;
            for (int i = 0; i < shapeNode.size(); i++) {
                shape[shapeNode.size() - 1 - i] = whole(path, name, "shape", shapeNode.get(i));
            }
            long bytes = ModelLimits.tensorBytes(path, name, shape, type);
            long begin = whole(path, name, "data_offsets", offsets.get(0)), end = whole(path, name, "data_offsets", offsets.get(1));
            if (end - begin != bytes) {
                throw new ModelFormatException(path, "tensor '" + name + "' data [" + begin + ", " + end + ") is " + (end - begin)
                        + " bytes but its shape " + shapeNode + " of " + type + " needs " + bytes);
            }
            if (begin > file.byteSize() - dataStart) {
                throw new ModelFormatException(path, "tensor '" + name + "' data [" + begin + ", " + end + ") lies past the end of the file");
            }
            extents.add(new ModelLimits.Extent(name, dataStart + begin, bytes));
            types.add(type);
            shapes.add(shape);
        }
        ModelLimits.checkExtents(path, extents, dataStart, file.byteSize());
        for (int i = 0; i < extents.size(); i++) {
            ModelLimits.Extent x = extents.get(i);
            ts.put(x.tensor(), new Tensor(x.tensor(), types.get(i), shapes.get(i), file.asSlice(x.start(), x.bytes())));
        }
        this.tensors = Collections.unmodifiableMap(ts);
    }

    /** A size or offset of the header: a non-negative JSON integer, never a string or a fraction read as one. */
    private static long whole(Path path, String tensor, String field, JsonNode v) {
        if (v == null || !v.isIntegralNumber() || !v.canConvertToLong() || v.asLong() < 0) {
            throw new ModelFormatException(path, "tensor '" + tensor + "' has '" + field + "' entry " + v
                    + "; allowed: integers from 0 to " + Long.MAX_VALUE);
        }
        return v.asLong();
    }

    public static SafetensorsFile open(Path path) {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return new SafetensorsFile(path, arena, ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena));
        } catch (NoSuchFileException e) {
            arena.close();
            throw new ModelFormatException(path, "file not found");
        } catch (IOException e) {
            arena.close();
            throw new ModelFormatException(path, "cannot read: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public Path path() { return path; }

    /** Tensors by their Hugging Face names. */
    public Map<String, Tensor> tensors() { return tensors; }

    @Override
    public void close() { arena.close(); }
}
