package dev.tandem.model.gguf;

import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.model.gguf.GgufWriter.ArrayValue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class GgufWriterTest {
    @TempDir Path tmp;

    private GgufFile roundTrip(GgufWriter w) throws IOException {
        Path p = tmp.resolve("out.gguf");
        w.write(p);
        assertEquals(w.fileSize(), Files.size(p), "fileSize() predicts the written size");
        return GgufFile.open(p);
    }

    @Test
    void everyScalarValueTypeReadsBackAsTheReaderRepresentsIt() throws IOException {
        GgufWriter w = new GgufWriter()
                .put("u8", GgufValueType.UINT8, 255)
                .put("i8", GgufValueType.INT8, -128)
                .put("u16", GgufValueType.UINT16, 65535)
                .put("i16", GgufValueType.INT16, -32768)
                .put("u32", GgufValueType.UINT32, 0xFFFF_FFFFL)
                .put("i32", GgufValueType.INT32, Integer.MIN_VALUE)
                .put("f32", GgufValueType.FLOAT32, 1.5f)
                .put("bool", GgufValueType.BOOL, true)
                .put("string", GgufValueType.STRING, "héllo ▁wörld")
                .put("u64", GgufValueType.UINT64, Long.MAX_VALUE)
                .put("i64", GgufValueType.INT64, Long.MIN_VALUE)
                .put("f64", GgufValueType.FLOAT64, Math.PI);
        try (GgufFile f = roundTrip(w)) {
            Map<String, Object> m = f.metadata();
            assertEquals(3, f.version());
            assertEquals(255, m.get("u8"));
            assertEquals(-128, m.get("i8"));
            assertEquals(65535, m.get("u16"));
            assertEquals(-32768, m.get("i16"));
            assertEquals(0xFFFF_FFFFL, m.get("u32"));
            assertEquals(Integer.MIN_VALUE, m.get("i32"));
            assertEquals(1.5f, m.get("f32"));
            assertEquals(true, m.get("bool"));
            assertEquals("héllo ▁wörld", m.get("string"));
            assertEquals(Long.MAX_VALUE, m.get("u64"));
            assertEquals(Long.MIN_VALUE, m.get("i64"));
            assertEquals(Math.PI, m.get("f64"));
            assertEquals(12, m.size());
            assertEquals(m.keySet().stream().toList(),
                    java.util.List.of("u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "u64", "i64", "f64"),
                    "metadata keeps insertion order");
        }
    }

    @Test
    void arraysOfEveryElementTypeAndNestedArraysReadBack() throws IOException {
        GgufWriter w = new GgufWriter()
                .putArray("a.u8", new ArrayValue(GgufValueType.UINT8, new int[] {0, 200, 255}))
                .putArray("a.i8", new ArrayValue(GgufValueType.INT8, new int[] {-1, 127}))
                .putArray("a.u16", new ArrayValue(GgufValueType.UINT16, new int[] {40000}))
                .putArray("a.i16", new ArrayValue(GgufValueType.INT16, new int[] {-300, 300}))
                .putArray("a.u32", new ArrayValue(GgufValueType.UINT32, new long[] {0xFFFF_FFFFL, 7}))
                .putArray("a.i32", ArrayValue.ofInt32(1, -2, 3))
                .putArray("a.f32", ArrayValue.ofFloat32(0.25f, -1e30f))
                .putArray("a.bool", new ArrayValue(GgufValueType.BOOL, new boolean[] {true, false, true}))
                .putArray("a.string", ArrayValue.ofStrings("<s>", "", "▁the", "<0x0A>"))
                .putArray("a.u64", new ArrayValue(GgufValueType.UINT64, new long[] {-1L}))
                .putArray("a.i64", new ArrayValue(GgufValueType.INT64, new long[] {Long.MIN_VALUE, 5}))
                .putArray("a.f64", new ArrayValue(GgufValueType.FLOAT64, new double[] {1e300, -0.5}))
                .putArray("a.empty", ArrayValue.ofStrings())
                .putArray("a.nested", ArrayValue.ofArrays(ArrayValue.ofStrings("x", "y"), ArrayValue.ofInt32(9),
                        ArrayValue.ofArrays(ArrayValue.ofFloat32(2f))));
        try (GgufFile f = roundTrip(w)) {
            Map<String, Object> m = f.metadata();
            assertArrayEquals(new int[] {0, 200, 255}, (int[]) m.get("a.u8"));
            assertArrayEquals(new int[] {-1, 127}, (int[]) m.get("a.i8"));
            assertArrayEquals(new int[] {40000}, (int[]) m.get("a.u16"));
            assertArrayEquals(new int[] {-300, 300}, (int[]) m.get("a.i16"));
            assertArrayEquals(new long[] {0xFFFF_FFFFL, 7}, (long[]) m.get("a.u32"));
            assertArrayEquals(new int[] {1, -2, 3}, (int[]) m.get("a.i32"));
            assertArrayEquals(new float[] {0.25f, -1e30f}, (float[]) m.get("a.f32"));
            assertArrayEquals(new boolean[] {true, false, true}, (boolean[]) m.get("a.bool"));
            assertArrayEquals(new String[] {"<s>", "", "▁the", "<0x0A>"}, (String[]) m.get("a.string"));
            assertArrayEquals(new long[] {-1L}, (long[]) m.get("a.u64"));
            assertArrayEquals(new long[] {Long.MIN_VALUE, 5}, (long[]) m.get("a.i64"));
            assertArrayEquals(new double[] {1e300, -0.5}, (double[]) m.get("a.f64"));
            assertArrayEquals(new String[0], (String[]) m.get("a.empty"));
            Object[] nested = (Object[]) m.get("a.nested");
            assertEquals(3, nested.length);
            assertArrayEquals(new String[] {"x", "y"}, (String[]) nested[0]);
            assertArrayEquals(new int[] {9}, (int[]) nested[1]);
            assertArrayEquals(new float[] {2f}, (float[]) ((Object[]) nested[2])[0]);
        }
    }

    @Test
    void metadataCopiedAsReadReadsBackEqual() throws IOException {
        GgufWriter original = new GgufWriter()
                .putUInt32("tokenizer.ggml.bos_token_id", 1)
                .putInt32("i", -5)
                .put("big", GgufValueType.INT64, 1L << 40)
                .putFloat32("f", 0.5f)
                .putBool("b", false)
                .putString("s", "llama")
                .putArray("types", ArrayValue.ofInt32(2, 3, 6))
                .putArray("nested", ArrayValue.ofArrays(ArrayValue.ofStrings("a"), new ArrayValue(GgufValueType.INT64, new long[] {-1L})));
        Path first = tmp.resolve("first.gguf");
        original.write(first);
        GgufWriter copy = new GgufWriter();
        try (GgufFile f = GgufFile.open(first)) {
            f.metadata().forEach(copy::putAsRead);
        }
        try (GgufFile a = GgufFile.open(first); GgufFile b = roundTrip(copy)) {
            assertEquals(a.metadata().keySet(), b.metadata().keySet());
            for (String key : a.metadata().keySet()) {
                assertTrue(java.util.Objects.deepEquals(a.metadata().get(key), b.metadata().get(key)), key);
            }
        }
        assertArrayEquals(Files.readAllBytes(first), Files.readAllBytes(tmp.resolve("out.gguf")),
                "where the declared types follow the as-read rule, the copy is byte-identical");
    }

    /** Random floats, quantised by the type's own quantiser, written in two pieces to exercise streaming. */
    @ParameterizedTest
    @EnumSource(TensorType.class)
    void everyTensorTypeReadsBackByteForByteAtAlignedOffsets(TensorType type) throws IOException {
        int columns = 512;
        int rows = 3;
        float[] values = new float[columns * rows];
        Random rnd = new Random(7);
        for (int i = 0; i < values.length; i++) values[i] = (float) rnd.nextGaussian();
        MemorySegment bytes = MemorySegment.ofArray(new byte[(int) type.bytesFor(values.length)]);
        type.quantize(values, 0, values.length, bytes, 0);
        long half = type.bytesFor(columns);
        float[] norm = {1f, 2f, 3f};   // 12 bytes: forces padding before the next tensor
        GgufWriter w = new GgufWriter()
                .putUInt32("general.alignment", 64)
                .addTensor("norm", TensorType.F32, new long[] {3}, sink -> sink.write(MemorySegment.ofArray(norm)))
                .addTensor("w", type, new long[] {columns, rows}, sink -> {
                    sink.write(bytes.asSlice(0, half));
                    sink.write(bytes.asSlice(half));
                });
        try (GgufFile f = roundTrip(w)) {
            assertEquals(0, f.dataOffset() % 64);
            Tensor t = f.tensor("w");
            assertEquals(type, t.type());
            assertArrayEquals(new long[] {columns, rows}, t.shape());
            assertEquals(0, t.data().address() % 64, "tensor data is aligned to general.alignment");
            assertArrayEquals(bytes.toArray(ValueLayout.JAVA_BYTE), t.data().toArray(ValueLayout.JAVA_BYTE));
            float[] back = new float[values.length];
            type.dequantize(t.data(), 0, back, 0, values.length);
            float[] expected = new float[values.length];
            type.dequantize(bytes, 0, expected, 0, values.length);
            assertArrayEquals(expected, back);
            Tensor n = f.tensor("norm");
            assertArrayEquals(norm, n.data().toArray(ValueLayout.JAVA_FLOAT_UNALIGNED));
        }
    }

    @Test
    void aTensorThatProducesTheWrongNumberOfBytesFailsAndLeavesNoFile() {
        Path p = tmp.resolve("bad.gguf");
        GgufWriter w = new GgufWriter().addTensor("short", TensorType.F32, new long[] {4}, sink -> sink.write(MemorySegment.ofArray(new float[3])));
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> w.write(p));
        assertTrue(e.getMessage().contains("'short'"), e.getMessage());
        assertFalse(Files.exists(p));
        assertFalse(Files.exists(tmp.resolve("bad.gguf.partial")));
    }

    @Test
    void badValuesAreRejectedWithTheKey() {
        GgufWriter w = new GgufWriter();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.put("k8", GgufValueType.UINT8, 256)).getMessage().contains("'k8'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.put("ks", GgufValueType.STRING, 5)).getMessage().contains("'ks'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> w.putUInt32("general.alignment", 48)).getMessage().contains("alignment"));
        assertThrows(IllegalArgumentException.class, () -> new ArrayValue(GgufValueType.FLOAT32, new int[1]));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> w.addTensor("q", TensorType.Q8_0, new long[] {48, 2}, sink -> {})).getMessage().contains("'q'"));
    }
}
