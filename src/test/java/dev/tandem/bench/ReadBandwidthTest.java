package dev.tandem.bench;

import dev.tandem.forge.Forge;
import dev.tandem.forge.ForgeSpec;
import dev.tandem.model.ModelFile;
import dev.tandem.model.Tensor;
import dev.tandem.model.TensorType;
import dev.tandem.testing.SharedData;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class ReadBandwidthTest {
    @TempDir Path tmp;

    @Test
    void anUntiedModelReadsEverythingButTheTokenEmbedding() {
        try (ModelFile file = ModelFile.open(SharedData.kjv("kjv-main-q8_0.gguf"))) {
            assertFalse(file.config().tiedEmbeddings(), "the KJV main model has its own output head");
            long embedding = file.tensor("token_embd.weight").byteSize();
            assertTrue(embedding > 0);
            assertTrue(file.findTensor("output.weight").isPresent());
            assertEquals(file.weightBytes() - embedding, ReadBandwidth.bytesPerToken(file));
        }
    }

    @Test
    void aTiedModelReadsTheEmbeddingOnceAsTheHead() throws IOException {
        Path tied = tmp.resolve("tied.gguf"), untied = tmp.resolve("untied.gguf");
        Forge.write(ForgeSpec.preset("tiny").withTied(true), tied);
        Forge.write(ForgeSpec.preset("tiny").withTied(false), untied);
        try (ModelFile t = ModelFile.open(tied); ModelFile u = ModelFile.open(untied)) {
            assertTrue(t.config().tiedEmbeddings());
            assertTrue(t.findTensor("output.weight").isEmpty());
            assertEquals(t.weightBytes(), ReadBandwidth.bytesPerToken(t), "every weight, the embedding once");
            // The same shapes untied: the head is its own matrix, the embedding is not read; same bytes per token.
            assertEquals(u.weightBytes() - u.tensor("token_embd.weight").byteSize(), ReadBandwidth.bytesPerToken(u));
            assertEquals(ReadBandwidth.bytesPerToken(t), ReadBandwidth.bytesPerToken(u));
        }
    }

    @Test
    void theVectorReadSumsEveryByteTailsIncluded() {
        Random random = new Random(3);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment all = arena.allocate(5000, 64);
            for (long i = 0; i < all.byteSize(); i++) all.set(ValueLayout.JAVA_BYTE, i, (byte) random.nextInt());
            for (int start : new int[] {0, 1, 7, 32}) {
                for (int length : new int[] {0, 1, 7, 8, 63, 64, 65, 255, 256, 257, 1000, 4093}) {
                    MemorySegment seg = all.asSlice(start, length);
                    long expected = 0, off = 0;
                    for (; off + 8 <= length; off += 8) expected += seg.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), off);
                    for (; off < length; off++) expected += seg.get(ValueLayout.JAVA_BYTE, off);
                    assertEquals(expected, ReadBandwidth.sum(seg), "start " + start + ", length " + length);
                }
            }
        }
    }

    @Test
    void measureReadsEveryByteOfEveryTensor() {
        try (Arena arena = Arena.ofShared()) {
            // Sizes that are not multiples of a vector or of a chunk.
            Tensor a = new Tensor("a", TensorType.Q8_0, new long[] {32, 3}, arena.allocate(TensorType.Q8_0.bytesFor(96)));
            Tensor b = new Tensor("b", TensorType.F32, new long[] {ReadBandwidth.CHUNK_BYTES / 4 + 5}, arena.allocate(ReadBandwidth.CHUNK_BYTES + 20));
            ReadBandwidth.Result r = ReadBandwidth.measure(List.of(a, b), 2, 2);
            assertEquals(a.byteSize() + b.byteSize(), r.bytesPerPass());
            assertEquals(2, r.threads());
            assertTrue(r.secondsPerPass() > 0 && r.gbPerSecond() > 0, r.toString());
            assertEquals(r.bytesPerPass() / r.secondsPerPass() / 1e9, r.gbPerSecond(), 1e-9 * r.gbPerSecond());
        }
    }

    @Test
    void theLimitIsBandwidthOverBytesPerToken() {
        ReadBandwidth.Result before = new ReadBandwidth.Result(3_410_000_000L, 0.125, 27.0, 2, 5);
        ReadBandwidth.Result after = new ReadBandwidth.Result(3_410_000_000L, 0.125, 27.4, 2, 5);
        ReadBandwidth.Limit limit = new ReadBandwidth.Limit(before, after, 3_410_000_000L);
        assertEquals(27.2, limit.gbPerSecond(), 1e-12);
        assertEquals(27.2e9 / 3.41e9, limit.limitTokensPerSecond(), 1e-9);
        assertEquals(100 * 5.67 / (27.2 / 3.41), limit.percentOfLimit(5.67), 1e-9);
        assertEquals("= 71 % of the read-bandwidth limit (7.98 tok/s: 3.41 GB per token at 27.2 GB/s)", limit.statement(5.67));
        assertEquals(List.of("read_bandwidth_gb_per_s", "read_bandwidth_gb_per_s_before", "read_bandwidth_gb_per_s_after",
                "bytes_per_token", "limit_tokens_per_second", "percent_of_limit"), List.copyOf(limit.toMap(5.67).keySet()));
        assertTrue(new ReadBandwidth.Limit(before, after, 9_000_000L).statement(100).contains("9.0 MB per token"));
    }
}
