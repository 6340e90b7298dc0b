package dev.tandem.model.quant;

import dev.tandem.model.TensorType;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Hand-built blocks, laid out from ggml's block definitions, and the values they must decode to. */
class WeightFormatKnownAnswerTest {

    private static MemorySegment bytes(int... values) {
        MemorySegment s = Arena.ofAuto().allocate(values.length);
        for (int i = 0; i < values.length; i++) s.set(LittleEndian.BYTE, i, (byte) values[i]);
        return s;
    }

    private static float[] decode(TensorType type, MemorySegment s, int count) {
        float[] out = new float[count];
        type.dequantize(s, 0, out, 0, count);
        return out;
    }

    @Test
    void f16AndBf16AreHalfAndTopHalfOfF32() {
        // f16 0x3C00 = 1, 0xC000 = -2; bf16 0x3F80 = 1, 0x4049 = 3.140625
        assertArrayEquals(new float[] {1, -2}, decode(TensorType.F16, bytes(0x00, 0x3C, 0x00, 0xC0), 2));
        assertArrayEquals(new float[] {1, 3.140625f}, decode(TensorType.BF16, bytes(0x80, 0x3F, 0x49, 0x40), 2));
        assertArrayEquals(new float[] {1}, decode(TensorType.F32, bytes(0x00, 0x00, 0x80, 0x3F), 1));
    }

    @Test
    void q8_0IsScaleThenSignedBytes() {
        int[] block = new int[34];
        block[0] = 0x00; block[1] = 0x38;                  // f16 0.5
        for (int i = 0; i < 32; i++) block[2 + i] = i;
        block[2 + 31] = -128;
        float[] expected = new float[32];
        for (int i = 0; i < 32; i++) expected[i] = 0.5f * i;
        expected[31] = -64;
        assertArrayEquals(expected, decode(TensorType.Q8_0, bytes(block), 32));
    }

    @Test
    void q4_0LowNibblesAreTheFirstHalf() {
        int[] block = new int[18];
        block[0] = 0x00; block[1] = 0x40;                  // f16 2
        for (int j = 0; j < 16; j++) block[2 + j] = j | (15 - j) << 4;
        float[] expected = new float[32];
        for (int j = 0; j < 16; j++) {
            expected[j] = (j - 8) * 2;
            expected[j + 16] = (15 - j - 8) * 2;
        }
        assertArrayEquals(expected, decode(TensorType.Q4_0, bytes(block), 32));
    }

    /** Scales 1,2,3,4,17,5,33,63 and mins 0,1,2,3,16,3,50,0 packed by hand as get_scale_min_k4 reads them. */
    private static final int[] K_SCALES = {0x41, 0x02, 0x83, 0xC4, 0x40, 0x01, 0xC2, 0x03, 0x01, 0x35, 0x21, 0x0F};
    private static final int[] SC = {1, 2, 3, 4, 17, 5, 33, 63};
    private static final int[] MIN = {0, 1, 2, 3, 16, 3, 50, 0};

    @Test
    void kScalesUnpackSixBitPairs() {
        MemorySegment s = bytes(K_SCALES);
        for (int j = 0; j < 8; j++) {
            assertEquals(SC[j], KScales.scale(s, 0, j), "scale " + j);
            assertEquals(MIN[j], KScales.min(s, 0, j), "min " + j);
        }
        MemorySegment packed = Arena.ofAuto().allocate(12);
        KScales.pack(SC, MIN, packed, 0);
        assertEquals(s.mismatch(packed), -1);
    }

    @Test
    void q4_KIsDTimesScaleTimesNibbleMinusDminTimesMin() {
        int[] block = new int[144];
        block[0] = 0x00; block[1] = 0x3C;                  // d = 1
        block[2] = 0x00; block[3] = 0x38;                  // dmin = 0.5
        System.arraycopy(K_SCALES, 0, block, 4, 12);
        for (int i = 0; i < 128; i++) block[16 + i] = 0x52; // even sub-blocks: 2, odd: 5
        // sub-block j: 1 * SC[j] * (2 or 5) - 0.5 * MIN[j]
        float[] perSub = {2, 9.5f, 5, 18.5f, 26, 23.5f, 41, 315};
        float[] expected = new float[256];
        for (int i = 0; i < 256; i++) expected[i] = perSub[i / 32];
        assertArrayEquals(expected, decode(TensorType.Q4_K, bytes(block), 256));
    }

    @Test
    void q5_KTakesBitFourFromQh() {
        int[] block = new int[176];
        block[0] = 0x00; block[1] = 0x3C;                  // d = 1, dmin = 0
        for (int j = 0; j < 4; j++) block[4 + j] = 1;      // scales 0..3 = 1, mins 0..3 = 0
        for (int j = 0; j < 4; j++) block[12 + j] = 0x01;  // scales 4..7 = 1, mins 4..7 = 0
        for (int l = 0; l < 32; l++) block[16 + l] = 0x82; // bit 1 -> sub-block 1, bit 7 -> sub-block 7
        for (int i = 0; i < 128; i++) block[48 + i] = 0x31; // low nibble 1 (even sub-blocks), high 3 (odd)
        float[] perSub = {1, 19, 1, 3, 1, 3, 1, 19};
        float[] expected = new float[256];
        for (int i = 0; i < 256; i++) expected[i] = perSub[i / 32];
        assertArrayEquals(expected, decode(TensorType.Q5_K, bytes(block), 256));
    }

    @Test
    void q6_KCombinesLowNibblesAndBitPairs() {
        int[] block = new int[210];
        for (int i = 0; i < 128; i++) block[i] = 0x21;           // ql: low 1, high 2
        for (int i = 0; i < 64; i++) block[128 + i] = 0xE4;      // qh bit pairs: 0, 1, 2, 3
        for (int k = 0; k < 16; k++) block[192 + k] = k + 1;     // scales 1..16
        block[208] = 0x00; block[209] = 0x3C;                    // d = 1
        // within each half: l -> 1|0<<4, l+32 -> 1|1<<4, l+64 -> 2|2<<4, l+96 -> 2|3<<4, minus 32
        int[] q = {1 - 32, 17 - 32, 34 - 32, 50 - 32};
        float[] expected = new float[256];
        for (int e = 0; e < 256; e++) expected[e] = (e / 16 + 1) * q[(e % 128) / 32];
        assertArrayEquals(expected, decode(TensorType.Q6_K, bytes(block), 256));
    }

    @Test
    void partialBlocksAreRejected() {
        MemorySegment s = Arena.ofAuto().allocate(34);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> TensorType.Q8_0.dequantize(s, 0, new float[16], 0, 16));
        assertEquals("16 elements is not a whole number of Q8_0 blocks of 32", e.getMessage());
    }
}
