package dev.tandem.model.quant;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** The value layouts of model files: little-endian and unaligned, since blocks of 18, 34 or 210 bytes align nothing. */
public final class LittleEndian {
    public static final ValueLayout.OfByte BYTE = ValueLayout.JAVA_BYTE;
    public static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private LittleEndian() {}
}
