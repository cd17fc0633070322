package dinostream.model.graph;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class HalfFloatsTest {
    private static int f16(float f) {
        return HalfFloats.float16(f) & 0xFFFF;
    }

    private static int bf16(float f) {
        return HalfFloats.bfloat16(f) & 0xFFFF;
    }

    @Test
    void float16EdgeCases() {
        assertEquals(0x0000, f16(0f));
        assertEquals(0x8000, f16(-0f));
        assertEquals(0x3C00, f16(1f));
        assertEquals(0xC000, f16(-2f));
        assertEquals(0x7BFF, f16(65504f));                    // the largest finite half
        assertEquals(0x7BFF, f16(65519.996f));                // below the tie: down
        assertEquals(0x7C00, f16(65520f));                    // the tie above 65504 (odd): to inf
        assertEquals(0xFC00, f16(-1e6f));
        assertEquals(0x7C00, f16(Float.POSITIVE_INFINITY));
        assertEquals(0xFC00, f16(Float.NEGATIVE_INFINITY));
        assertTrue(Float.isNaN(HalfFloats.fromFloat16(HalfFloats.float16(Float.NaN))));
        assertEquals(0x0400, f16(0x1p-14f));                  // the smallest normal
        assertEquals(0x03FF, f16(0x1p-14f - 0x1p-24f));       // the largest subnormal
        assertEquals(0x0400, f16(0x1p-14f - 0x1p-25f));       // tie between them: to the even, normal one
        assertEquals(0x0001, f16(0x1p-24f));                  // the smallest subnormal
        assertEquals(0x0000, f16(0x1p-25f));                  // tie between 0 and it: to 0
        assertEquals(0x0001, f16(Math.nextUp(0x1p-25f)));     // just above the tie: up
        assertEquals(0x0002, f16(3 * 0x1p-25f));              // tie between 1 and 2 units: to 2
        assertEquals(0x8000, f16(-Float.MIN_VALUE));
        assertEquals(0x3C00, f16(1 + 0x1p-11f));              // tie: to the even 1
        assertEquals(0x3C02, f16(1 + 3 * 0x1p-11f));          // tie: to the even 1 + 2^-9
        assertEquals(0x3C01, f16(Math.nextUp(1 + 0x1p-11f))); // above the tie: up
    }

    /** Every half value round-trips, and every midpoint between neighbours goes to the even one (ties to even throughout). */
    @Test
    void float16IsRoundToNearestEvenEverywhere() {
        for (int h = 0; h < 0x7C00; h++) {
            for (int sign : new int[]{0, 0x8000}) {
                short bits = (short) (h | sign);
                float v = HalfFloats.fromFloat16(bits);
                assertEquals(h | sign, f16(v), "round trip of " + Integer.toHexString(h | sign));
                if (h == 0x7BFF) continue;   // its upper neighbour is inf: the ties there are float16EdgeCases'
                float next = HalfFloats.fromFloat16((short) ((h + 1) | sign));
                float mid = (float) (((double) v + next) / 2);   // exact: halves have 11 significant bits
                int even = (h & 1) == 0 ? h : h + 1;
                assertEquals(even | sign, f16(mid), "tie above " + Integer.toHexString(h | sign));
                assertEquals(h | sign, f16(Math.nextDown(Math.abs(mid)) * (sign == 0 ? 1 : -1)));
                assertEquals((h + 1) | sign, f16(Math.nextUp(Math.abs(mid)) * (sign == 0 ? 1 : -1)));
            }
        }
    }

    @Test
    void bfloat16EdgeCases() {
        assertEquals(0x3F80, bf16(1f));
        assertEquals(0x8000, bf16(-0f));
        assertEquals(0x3F80, bf16(1 + 0x1p-8f));              // tie: to the even 1
        assertEquals(0x3F82, bf16(1 + 3 * 0x1p-8f));          // tie: to the even 1 + 2^-6
        assertEquals(0x3F81, bf16(Math.nextUp(1 + 0x1p-8f)));
        assertEquals(0x7F80, bf16(Float.MAX_VALUE));          // overflows to inf
        assertEquals(0xFF80, bf16(-Float.MAX_VALUE));
        assertEquals(0x7F7F, bf16(Float.intBitsToFloat(0x7F7F7FFF)));
        assertEquals(0x0000, bf16(Float.MIN_VALUE));          // subnormals round like any other bits
        assertEquals(0x0000, bf16(Float.intBitsToFloat(0x00008000)));   // tie: to 0
        assertEquals(0x0002, bf16(Float.intBitsToFloat(0x00018000)));   // tie: to the even 2
        assertEquals(0x0080, bf16(Float.intBitsToFloat(0x007FFFFF)));   // the largest subnormal: up to the smallest normal
        assertTrue(Float.isNaN(HalfFloats.fromBfloat16(HalfFloats.bfloat16(Float.NaN))));
        assertTrue(Float.isNaN(HalfFloats.fromBfloat16(HalfFloats.bfloat16(Float.intBitsToFloat(0x7F800001)))));   // not inf
    }

    @Test
    void narrowedConvertsLittleEndianBuffers() {
        ByteBuffer in = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putFloat(1f).putFloat(-2f).flip();
        ByteBuffer h = HalfFloats.narrowed(in, DType.FLOAT16), b = HalfFloats.narrowed(in, DType.BFLOAT16);
        assertEquals(4, h.remaining());
        assertEquals((short) 0x3C00, h.getShort(0));
        assertEquals((short) 0xC000, h.getShort(2));
        assertEquals((short) 0xC000, b.getShort(2));
        assertEquals(8, in.remaining());   // the source is not consumed
    }
}
