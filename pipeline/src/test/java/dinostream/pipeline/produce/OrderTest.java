package dinostream.pipeline.produce;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The three orders, and one way to get what to send for any of them. */
class OrderTest {
    private final SyntheticSource source = new SyntheticSource(3, 500, 28, 1);

    @Test
    void parsesTheCliNames() {
        for (Order o : Order.values()) assertEquals(o, Order.parse(o.cliName()));
        assertEquals(Order.CAMERA, Order.parse("camera"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Order.parse("random"));
        assertEquals("unknown order 'random' (expected iid, class-sorted or camera)", e.getMessage());
    }

    @Test
    void iidAndClassSortedSendTheSourceAsIndicesOrderIt() {
        for (Order o : new Order[]{Order.IID, Order.CLASS_SORTED}) {
            for (long limit : new long[]{-1, 50}) {
                Order.Feed f = o.feed(source, 5, limit, 4, 256);
                assertSame(source, f.source(), "the images themselves");
                assertArrayEquals(o.indices(source, 5, limit), f.order(), o + " limit " + limit);
            }
        }
        // What the demo sent before it had --order: the seeded shuffle, seed 0.
        assertArrayEquals(Order.permutation(500, 0), Order.IID.feed(source, 0, -1, 4, 256).order());
    }

    @Test
    void cameraSendsFramesInTheirOrder() {
        Order.Feed f = Order.CAMERA.feed(source, 5, 100, 2, 16);
        CameraFeed c = assertInstanceOf(CameraFeed.class, f.source());
        assertEquals(100, c.size(), "the limit counts frames");
        assertEquals(2, c.framesPerImage());
        assertEquals(16, c.runLength());
        assertArrayEquals(c.order(), f.order());
        UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class, () -> Order.CAMERA.indices(source, 5, -1));
        assertTrue(e.getMessage().contains("Order.feed"), e.getMessage());
    }
}
