package dinostream.model.graph;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * float32 to the 16-bit types' bit patterns, rounded to nearest, ties to even (as a Cast to them
 * rounds), by hand since {@code Float.floatToFloat16} needs Java 20. NaN stays a quiet NaN of its sign.
 */
public final class HalfFloats {
    private HalfFloats() {}

    /** bfloat16: the top 16 bits of the float32, rounded on the 16 bits dropped. */
    public static short bfloat16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
        int lsb = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lsb) >>> 16);   // a carry into the exponent is the correct rounding up (to inf past the top)
    }

    /** IEEE binary16: 5 exponent bits (bias 15), 10 fraction bits, subnormals below 2^-14. */
    public static short float16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7FFFFFFF;
        if (abs > 0x7F800000) return (short) (sign | 0x7E00);   // NaN
        if (abs >= 0x477FF000) return (short) (sign | 0x7C00);  // from 65520 (the tie above 65504, odd) on: inf
        int exp = abs >>> 23;
        if (exp >= 113) {   // a normal half (|f| >= 2^-14): rebias the exponent, round the 13 fraction bits dropped
            int h = ((exp - 112) << 10) | ((abs >>> 13) & 0x3FF);
            return (short) (sign | roundedUp(h, abs & 0x1FFF, 0x1000));
        }
        if (exp < 102) return (short) sign;   // |f| < 2^-25, half the smallest subnormal: 0 (2^-25 itself ties to 0 below)
        // A subnormal half counts units of 2^-24: the significand with its implicit bit, shifted down.
        int mant = (abs & 0x7FFFFF) | 0x800000, shift = 126 - exp;
        int h = mant >>> shift;
        return (short) (sign | roundedUp(h, mant & ((1 << shift) - 1), 1 << (shift - 1)));   // 0x400 after carry: the smallest normal
    }

    private static int roundedUp(int kept, int dropped, int half) {
        return dropped > half || (dropped == half && (kept & 1) != 0) ? kept + 1 : kept;
    }

    /** The float32 value of a binary16 bit pattern (exact). */
    public static float fromFloat16(short h) {
        int sign = (h & 0x8000) << 16, exp = (h >>> 10) & 0x1F, frac = h & 0x3FF;
        if (exp == 0x1F) return Float.intBitsToFloat(sign | 0x7F800000 | (frac << 13));
        if (exp == 0) return Math.copySign(frac * 0x1p-24f, sign != 0 ? -1f : 1f);
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (frac << 13));
    }

    /** The float32 value of a bfloat16 bit pattern (exact). */
    public static float fromBfloat16(short b) {
        return Float.intBitsToFloat((b & 0xFFFF) << 16);
    }

    /** Little-endian float32 data as little-endian {@code to} (BFLOAT16 or FLOAT16) data, each value rounded. */
    public static ByteBuffer narrowed(ByteBuffer float32, DType to) {
        if (to != DType.BFLOAT16 && to != DType.FLOAT16) throw new IllegalArgumentException("not a 16-bit float type: " + to);
        ByteBuffer in = float32.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        in.rewind();
        ByteBuffer out = ByteBuffer.allocate(in.remaining() / 2).order(ByteOrder.LITTLE_ENDIAN);
        while (in.hasRemaining()) {
            float f = in.getFloat();
            out.putShort(to == DType.BFLOAT16 ? bfloat16(f) : float16(f));
        }
        return out.flip();
    }
}
