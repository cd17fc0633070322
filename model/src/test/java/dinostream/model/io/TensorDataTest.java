package dinostream.model.io;

import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

import static org.junit.jupiter.api.Assertions.*;

class TensorDataTest {

    @Test
    void floatsKeepShapeValuesAndLittleEndianBytes() {
        TensorData t = TensorData.ofFloats(new long[]{2, 2}, new float[]{1f, -2.5f, 0f, 3e-8f});
        assertEquals(DType.F32, t.dtype());
        assertArrayEquals(new long[]{2, 2}, t.shape());
        assertEquals(4, t.numel());
        assertEquals(16, t.byteSize());
        assertArrayEquals(new float[]{1f, -2.5f, 0f, 3e-8f}, t.toFloatArray());
        assertArrayEquals(new double[]{1.0, -2.5, 0.0, (double) 3e-8f}, t.toDoubleArray());
        ByteBuffer b = t.data();
        assertEquals(ByteOrder.LITTLE_ENDIAN, b.order());
        byte[] first = new byte[4];
        b.get(first);
        assertArrayEquals(new byte[]{0, 0, (byte) 0x80, 0x3f}, first, "1.0f little-endian");
    }

    @Test
    void floatBufferIsAHeapReadOnlyViewWithItsOwnPosition() {
        TensorData t = TensorData.ofFloats(new long[]{3}, new float[]{1, 2, 3});
        FloatBuffer a = t.asFloatBuffer();
        // Built tensors stay off the JVM's direct pool (a TaskManager budget): TrainSession copies them into buffers it frees.
        assertTrue(!a.isDirect(), "built tensors are on the heap");
        assertTrue(a.isReadOnly());
        assertEquals(ByteOrder.nativeOrder(), a.order(), "ONNX Runtime reads the bytes as native order");
        a.get();
        assertEquals(0, t.asFloatBuffer().position());
        assertThrows(IllegalStateException.class, () -> TensorData.scalarLong(1).asFloatBuffer());
    }

    @Test
    void shapeIsDefensivelyCopied() {
        long[] shape = {2};
        TensorData t = TensorData.ofFloats(shape, new float[]{1, 2});
        shape[0] = 7;
        t.shape()[0] = 9;
        assertArrayEquals(new long[]{2}, t.shape());
    }

    @Test
    void scalars() {
        TensorData s = TensorData.scalarLong(-42);
        assertEquals(DType.I64, s.dtype());
        assertEquals(0, s.rank());
        assertEquals(1, s.numel());
        assertEquals(-42, s.longValue());
        TensorData f = TensorData.scalarFloat(0.25f);
        assertEquals(0, f.rank());
        assertEquals(0.25, f.doubleValue());
        assertThrows(IllegalStateException.class, f::longValue);
        assertThrows(IllegalStateException.class, () -> TensorData.ofLongs(new long[]{2}, new long[]{1, 2}).longValue());
        assertEquals(5, TensorData.ofLongs(new long[]{1}, new long[]{5}).longValue(), "[1] counts as a scalar");
    }

    @Test
    void doublesAndLongs() {
        TensorData d = TensorData.ofDoubles(new long[]{2}, new double[]{0.1, -1e300});
        assertArrayEquals(new double[]{0.1, -1e300}, d.toDoubleArray());
        assertArrayEquals(new float[]{0.1f, Float.NEGATIVE_INFINITY}, d.toFloatArray());
        TensorData l = TensorData.ofLongs(new long[]{3}, new long[]{1, Long.MIN_VALUE, 3});
        assertArrayEquals(new long[]{1, Long.MIN_VALUE, 3}, l.toLongArray());
        assertEquals(3.0, l.doubleAt(2));
        assertThrows(IllegalStateException.class, l::toFloatArray);
    }

    @Test
    void elementCountMustMatchShape() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TensorData.ofFloats(new long[]{2, 3}, new float[5]));
        assertEquals("F32[2, 3] needs 6 elements, got 5", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TensorData.wrap(DType.I64, new long[]{2}, ByteBuffer.allocate(12)));
        assertThrows(IllegalArgumentException.class, () -> TensorData.zeros(DType.F32, new long[]{-1}));
    }

    @Test
    void wrapTakesTheRemainingBytesWithoutCopying() {
        ByteBuffer b = ByteBuffer.allocateDirect(12).order(ByteOrder.LITTLE_ENDIAN);
        b.putFloat(0, 9f).putFloat(4, 1f).putFloat(8, 2f);
        b.position(4);
        TensorData t = TensorData.wrap(DType.F32, new long[]{2}, b);
        assertArrayEquals(new float[]{1f, 2f}, t.toFloatArray());
        assertTrue(t.asFloatBuffer().isDirect());
        assertEquals(4, b.position(), "the caller's buffer position is left alone");
    }

    @Test
    void equalityIsBitExact() {
        TensorData a = TensorData.ofFloats(new long[]{2}, new float[]{Float.NaN, 0f});
        assertEquals(a, TensorData.ofFloats(new long[]{2}, new float[]{Float.NaN, 0f}));
        assertNotEquals(a, TensorData.ofFloats(new long[]{2}, new float[]{Float.NaN, -0f}));
        assertNotEquals(a, TensorData.ofFloats(new long[]{1, 2}, new float[]{Float.NaN, 0f}));
        assertEquals(a.hashCode(), TensorData.ofFloats(new long[]{2}, new float[]{Float.NaN, 0f}).hashCode());
    }

    @Test
    void findsNonFiniteValues() {
        assertEquals(-1, TensorData.ofFloats(new long[]{2}, new float[]{1, 2}).firstNonFinite());
        assertEquals(1, TensorData.ofFloats(new long[]{3}, new float[]{1, Float.NaN, Float.POSITIVE_INFINITY}).firstNonFinite());
        assertEquals(0, TensorData.ofDoubles(new long[]{1}, new double[]{Double.NEGATIVE_INFINITY}).firstNonFinite());
        assertEquals(-1, TensorData.scalarLong(Long.MAX_VALUE).firstNonFinite());
    }

    @Test
    void zerosAndFull() {
        assertArrayEquals(new float[6], TensorData.zeros(DType.F32, new long[]{2, 3}).toFloatArray());
        assertArrayEquals(new float[]{1, 1, 1}, TensorData.fullFloats(new long[]{3}, 1f).toFloatArray());
        assertEquals(0, TensorData.zeros(DType.F32, new long[]{0, 5}).numel());
    }
}
