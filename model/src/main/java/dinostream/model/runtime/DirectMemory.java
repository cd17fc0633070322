package dinostream.model.runtime;

import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;

/**
 * The JVM's direct-buffer pool, which ONNX Runtime's Java API reads every input tensor from. Its
 * limit is {@code -XX:MaxDirectMemorySize}; on a Flink TaskManager that is the framework and task
 * off-heap sizes plus network memory, so what user code takes from it must be declared as task
 * off-heap memory. Buffers taken here are freed at once on {@link #free}, not whenever the GC gets
 * to them: a restarted task must not find its predecessor's buffers still counted.
 */
public final class DirectMemory {
    private DirectMemory() {}

    private static final Method INVOKE_CLEANER;
    private static final Object UNSAFE;

    static {
        Method m = null;
        Object u = null;
        try {
            // sun.misc.Unsafe (module jdk.unsupported, open to all): invokeCleaner frees a direct buffer now.
            Class<?> c = Class.forName("sun.misc.Unsafe");
            Field f = c.getDeclaredField("theUnsafe");
            f.setAccessible(true);
            u = f.get(null);
            m = c.getMethod("invokeCleaner", ByteBuffer.class);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // Without it buffers are freed by the GC as usual.
        }
        INVOKE_CLEANER = m;
        UNSAFE = u;
    }

    /** A direct buffer of {@code bytes}, native byte order. */
    public static ByteBuffer allocate(long bytes) {
        if (bytes > Integer.MAX_VALUE) throw new IllegalArgumentException("a direct buffer holds at most 2 GiB, asked for " + bytes + " bytes");
        return ByteBuffer.allocateDirect((int) bytes).order(java.nio.ByteOrder.nativeOrder());
    }

    /** Frees a buffer from {@link #allocate} now; the buffer must not be used afterwards. Null is ignored. */
    public static void free(ByteBuffer b) {
        if (b == null || !b.isDirect() || INVOKE_CLEANER == null) return;
        try {
            INVOKE_CLEANER.invoke(UNSAFE, b);
        } catch (ReflectiveOperationException | RuntimeException e) {
            // a slice or duplicate cannot be cleaned: the GC frees it with its parent
        }
    }

    /** The pool's limit in bytes (-XX:MaxDirectMemorySize; the heap's maximum when not set). */
    public static long limit() {
        try {
            var hs = ManagementFactory.getPlatformMXBean(com.sun.management.HotSpotDiagnosticMXBean.class);
            long v = Long.parseLong(hs.getVMOption("MaxDirectMemorySize").getValue());
            return v > 0 ? v : Runtime.getRuntime().maxMemory();
        } catch (RuntimeException e) {
            return Runtime.getRuntime().maxMemory();
        }
    }

    /** Bytes of direct buffers allocated now (by anyone in this JVM: Flink's network stack too). */
    public static long used() {
        for (BufferPoolMXBean p : ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class)) {
            if (p.getName().equals("direct")) return p.getMemoryUsed();
        }
        return 0;
    }

    public static long available() {
        return limit() - used();
    }
}
