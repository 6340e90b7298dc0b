package dev.tandem.model.gguf;

import dev.tandem.model.ModelFormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Issue 14, defects 2, 3, 4 and 5 (GGUF headers): every count, size, offset and nesting level a GGUF header
 * declares is checked before anything is allocated or mapped from it, and the refusal is a
 * {@link ModelFormatException} naming the key or tensor, the value and the limit. Files "over 2 GiB" are sparse:
 * a header followed by a hole, as a crafted download would be.
 */
class GgufHostileHeaderTest {
    @TempDir Path tmp;

    /** Little-endian GGUF header bytes, written field by field. */
    static final class Header {
        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        Header(long tensors, long keys) { u32(GgufFile.MAGIC).u32(3).u64(tensors).u64(keys); }

        Header u32(long v) { return bytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array()); }

        Header u64(long v) { return bytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array()); }

        Header string(String s) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            return u64(b.length).bytes(b);
        }

        Header bytes(byte[] b) { out.writeBytes(b); return this; }

        /** A key with a UINT32 or UINT64 value. */
        Header key(String key, GgufValueType type, long value) {
            string(key).u32(type.id());
            return type == GgufValueType.UINT32 ? u32(value) : u64(value);
        }

        /** A tensor info: name, shape (ggml order), type id, offset into the data section. */
        Header tensor(String name, long[] shape, int type, long offset) {
            string(name).u32(shape.length);
            for (long d : shape) u64(d);
            return u32(type).u64(offset);
        }

        /** Pads to 32 and appends {@code dataBytes} zero bytes of tensor data. */
        Header data(int dataBytes) {
            while (out.size() % 32 != 0) out.write(0);
            out.writeBytes(new byte[dataBytes]);
            return this;
        }

        byte[] toBytes() { return out.toByteArray(); }
    }

    /** Writes {@code header}, then extends the file to {@code size} bytes with a hole. */
    private Path write(Header header, long size) throws IOException {
        Path p = tmp.resolve("hostile.gguf");
        byte[] b = header.toBytes();
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
            ch.write(ByteBuffer.wrap(b));
            if (size > b.length) ch.write(ByteBuffer.wrap(new byte[1]), size - 1);
        }
        return p;
    }

    private Path write(Header header) throws IOException { return write(header, 0); }

    private static String refused(Path p) {
        ModelFormatException e = assertThrows(ModelFormatException.class, () -> GgufFile.open(p).close());
        assertEquals(p, e.file());
        return e.getMessage();
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) assertTrue(message.contains(part), "'" + part + "' missing from: " + message);
    }

    // ---- defect 2: counts near 2^31 in files over 2 GiB are refused before allocating --------------------------

    @Test
    void aStringOf2GiBInAFileOver2GiBIsRefusedBeforeItIsCopied() throws IOException {
        Header h = new Header(0, 1).string("general.name").u32(GgufValueType.STRING.id()).u64(Integer.MAX_VALUE);
        String m = refused(write(h, (1L << 31) + 4096));
        assertMentions(m, "'general.name'", String.valueOf(Integer.MAX_VALUE), "allowed");
    }

    @Test
    void anArrayCountNear2To31InAFileOver2GiBIsRefusedBeforeTheArrayIsAllocated() throws IOException {
        Header h = new Header(0, 1).string("tokenizer.ggml.token_type").u32(GgufValueType.ARRAY.id())
                .u32(GgufValueType.INT32.id()).u64(Integer.MAX_VALUE - 100);
        String m = refused(write(h, 9L << 30));
        assertMentions(m, "'tokenizer.ggml.token_type'", String.valueOf(Integer.MAX_VALUE - 100), "allowed");
    }

    @Test
    void anArrayCountLargerThanTheFileIsRefused() throws IOException {
        Header h = new Header(0, 1).string("a").u32(GgufValueType.ARRAY.id()).u32(GgufValueType.STRING.id()).u64(1_000_000);
        assertMentions(refused(write(h)), "'a'", "1000000");
    }

    // ---- defect 3: no narrowing, no wrapping ----------------------------------------------------------------

    @Test
    void anArrayCountOf2To32Plus3IsNotReadAs3() throws IOException {
        long count = (1L << 32) + 3;
        Header h = new Header(0, 1).string("a.u8").u32(GgufValueType.ARRAY.id()).u32(GgufValueType.UINT8.id()).u64(count)
                .bytes(new byte[] {1, 2, 3});
        assertMentions(refused(write(h, count + 4096)), "'a.u8'", String.valueOf(count));
    }

    @Test
    void anAlignmentOf2To31IsRefusedInsteadOfTurningNegative() throws IOException {
        Header h = new Header(1, 1).key("general.alignment", GgufValueType.UINT32, 1L << 31)
                .tensor("w", new long[] {4}, 0, 0).data(16);
        assertMentions(refused(write(h)), "'general.alignment'", String.valueOf(1L << 31), "65536");
    }

    @Test
    void anAlignmentOf2To32IsRefusedInsteadOfDividingByZero() throws IOException {
        Header h = new Header(1, 1).key("general.alignment", GgufValueType.UINT64, 1L << 32)
                .tensor("w", new long[] {4}, 0, 0).data(16);
        assertMentions(refused(write(h)), "'general.alignment'", String.valueOf(1L << 32));
    }

    @Test
    void dimensionsWhoseProductOverflows64BitsAreRefusedByTensorName() throws IOException {
        Header h = new Header(1, 0).tensor("w", new long[] {1L << 32, 1L << 32}, 0, 0).data(16);
        assertMentions(refused(write(h)), "'w'", "overflows 64 bits");
    }

    @Test
    void anOffsetNear2To63DoesNotWrapAround() throws IOException {
        Header h = new Header(1, 0).tensor("w", new long[] {4}, 0, Long.MAX_VALUE - 15).data(16);
        assertMentions(refused(write(h)), "'w'", String.valueOf(Long.MAX_VALUE - 15), "past the end");
    }

    @Test
    void anOffsetWithTheTopBitSetIsRefused() throws IOException {
        Header h = new Header(1, 0).tensor("w", new long[] {4}, 0, -32).data(16);
        assertMentions(refused(write(h)), "'w'", "past the end");
    }

    // ---- defect 4: tensors aligned and not overlapping ----------------------------------------------------------

    @Test
    void tensorDataOffThe32ByteAlignmentIsRefused() throws IOException {
        Header h = new Header(1, 0).tensor("w", new long[] {4}, 0, 4).data(32);
        assertMentions(refused(write(h)), "'w'", "offset 4", "alignment 32");
    }

    @Test
    void tensorsSharingBytesAreRefused() throws IOException {
        Header h = new Header(2, 0).tensor("a", new long[] {8}, 0, 0).tensor("b", new long[] {8}, 0, 0).data(64);
        assertMentions(refused(write(h)), "'a'", "'b'", "overlap");
    }

    @Test
    void tensorsSideBySideAreAccepted() throws IOException {
        Header h = new Header(2, 0).tensor("a", new long[] {8}, 0, 0).tensor("b", new long[] {8}, 0, 32).data(64);
        try (GgufFile f = GgufFile.open(write(h))) {
            assertEquals(2, f.tensors().size());
        }
    }

    // ---- defect 5: nesting is bounded, not a StackOverflowError ------------------------------------------------

    @Test
    void arraysNested200000DeepAreRefusedWithoutOverflowingTheStack() throws IOException {
        Header h = new Header(0, 1).string("deep").u32(GgufValueType.ARRAY.id());
        for (int i = 0; i < 200_000; i++) h.u32(GgufValueType.ARRAY.id()).u64(1);
        h.u32(GgufValueType.UINT8.id()).u64(0);
        assertMentions(refused(write(h)), "'deep", "nests arrays", "allowed: 8");
    }

    @Test
    void arraysNestedTwiceAreRead() throws IOException {
        Header h = new Header(0, 1).string("nested").u32(GgufValueType.ARRAY.id())
                .u32(GgufValueType.ARRAY.id()).u64(1).u32(GgufValueType.UINT8.id()).u64(2).bytes(new byte[] {7, 8});
        try (GgufFile f = GgufFile.open(write(h))) {
            assertArrayEquals(new int[] {7, 8}, (int[]) ((Object[]) f.metadata().get("nested"))[0]);
        }
    }
}
