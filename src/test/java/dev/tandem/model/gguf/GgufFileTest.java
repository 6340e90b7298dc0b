package dev.tandem.model.gguf;

import dev.tandem.model.ModelFormatException;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.*;

class GgufFileTest {
    @TempDir Path tmp;

    @Test
    void readsTheKjvMainModelAsLlamaCppWroteIt() {
        try (GgufFile f = GgufFile.open(SharedData.kjv("kjv-main-f32.gguf"))) {
            assertEquals(3, f.version());
            assertEquals("llama", f.getString("general.architecture"));
            assertEquals(256, f.getInt("llama.embedding_length"));
            assertEquals(8, f.getInt("llama.block_count"));
            assertEquals(4096, f.getStringArray("tokenizer.ggml.tokens").length);
            assertEquals("<s>", f.getStringArray("tokenizer.ggml.tokens")[1]);
            Tensor q = f.tensor("blk.0.attn_q.weight");
            assertEquals(TensorType.F32, q.type());
            assertArrayEquals(new long[] {256, 256}, q.shape());
            Tensor down = f.tensor("blk.0.ffn_down.weight");
            assertArrayEquals(new long[] {768, 256}, down.shape());
            assertEquals(75, f.tensors().size());
        }
    }

    @Test
    void readsQuantisedTensorInfos() {
        try (GgufFile f = GgufFile.open(SharedData.kjv("kjv-draft-q8_0.gguf"))) {
            assertEquals(TensorType.Q8_0, f.tensor("token_embd.weight").type());
            assertEquals(TensorType.F32, f.tensor("output_norm.weight").type());
            assertTrue(f.findTensor("output.weight").isEmpty(), "the draft has a tied head");
        }
    }

    // ---- bad input: each names what is wrong and the file -------------------------------------------------

    /** A minimal valid GGUF: one string key, one F32 tensor of 4 elements. */
    private static ByteBuffer minimal(int version, int tensorType, long dataBytes) {
        ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(GgufFile.MAGIC).putInt(version).putLong(1).putLong(1);
        putString(b, "general.architecture");
        b.putInt(GgufValueType.STRING.id());
        putString(b, "llama");
        putString(b, "w");
        b.putInt(1).putLong(4).putInt(tensorType).putLong(0);
        while (b.position() % 32 != 0) b.put((byte) 0);
        for (long i = 0; i < dataBytes; i++) b.put((byte) 0);
        b.flip();
        return b;
    }

    private static void putString(ByteBuffer b, String s) {
        byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
        b.putLong(bytes.length).put(bytes);
    }

    private Path write(ByteBuffer b) throws IOException {
        Path p = tmp.resolve("model.gguf");
        byte[] bytes = new byte[b.remaining()];
        b.get(bytes);
        Files.write(p, bytes);
        return p;
    }

    private ModelFormatException fails(Path p) {
        return assertThrows(ModelFormatException.class, () -> GgufFile.open(p).close());
    }

    @Test
    void theMinimalFileIsValid() throws IOException {
        try (GgufFile f = GgufFile.open(write(minimal(3, 0, 16)))) {
            assertEquals(4, f.tensor("w").elements());
        }
    }

    @Test
    void badMagic() throws IOException {
        ByteBuffer b = minimal(3, 0, 16);
        b.put(0, (byte) 'X');
        Path p = write(b);
        ModelFormatException e = fails(p);
        assertTrue(e.getMessage().contains("bad magic"), e.getMessage());
        assertEquals(p, e.file());
    }

    @Test
    void unsupportedVersion() throws IOException {
        assertTrue(fails(write(minimal(1, 0, 16))).getMessage().contains("unsupported GGUF version 1"));
        assertTrue(fails(write(minimal(7, 0, 16))).getMessage().contains("unsupported GGUF version 7"));
    }

    @Test
    void truncatedHeader() throws IOException {
        ByteBuffer b = minimal(3, 0, 16);
        b.limit(40);
        assertTrue(fails(write(b)).getMessage().contains("truncated"));
    }

    @Test
    void tensorDataPastTheEnd() throws IOException {
        ByteBuffer b = minimal(3, 0, 8); // 4 F32 elements need 16 bytes
        String m = fails(write(b)).getMessage();
        assertTrue(m.contains("'w'") && m.contains("past the end"), m);
    }

    @Test
    void unknownTensorType() throws IOException {
        String m = fails(write(minimal(3, 99, 16))).getMessage();
        assertTrue(m.contains("'w'") && m.contains("unknown or unsupported tensor type 99"), m);
    }

    @Test
    void missingRequiredKeyIsNamed() throws IOException {
        try (GgufFile f = GgufFile.open(write(minimal(3, 0, 16)))) {
            ModelFormatException e = assertThrows(ModelFormatException.class, () -> f.getInt("llama.block_count"));
            assertTrue(e.getMessage().contains("missing required metadata key 'llama.block_count'"), e.getMessage());
            ModelFormatException wrongType = assertThrows(ModelFormatException.class, () -> f.getInt("general.architecture"));
            assertTrue(wrongType.getMessage().contains("should be an integer"), wrongType.getMessage());
        }
    }

    @Test
    void missingFile() {
        assertTrue(fails(tmp.resolve("nope.gguf")).getMessage().contains("file not found"));
    }

    @Test
    void arraysOfEveryElementType() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4096).order(ByteOrder.LITTLE_ENDIAN);
        b.putInt(GgufFile.MAGIC).putInt(3).putLong(0).putLong(3);
        putString(b, "a.u8");
        b.putInt(GgufValueType.ARRAY.id()).putInt(GgufValueType.UINT8.id()).putLong(2).put((byte) 255).put((byte) 1);
        putString(b, "a.nested");
        b.putInt(GgufValueType.ARRAY.id()).putInt(GgufValueType.ARRAY.id()).putLong(2);
        b.putInt(GgufValueType.INT64.id()).putLong(1).putLong(-5);
        b.putInt(GgufValueType.STRING.id()).putLong(1);
        putString(b, "x");
        putString(b, "a.f64");
        b.putInt(GgufValueType.FLOAT64.id()).putDouble(2.5);
        b.flip();
        try (GgufFile f = GgufFile.open(write(b))) {
            assertArrayEquals(new int[] {255, 1}, (int[]) f.metadata().get("a.u8"));
            Object[] nested = (Object[]) f.metadata().get("a.nested");
            assertArrayEquals(new long[] {-5}, (long[]) nested[0]);
            assertEquals("[x]", Arrays.toString((String[]) nested[1]));
            assertEquals(2.5, f.metadata().get("a.f64"));
        }
    }
}
