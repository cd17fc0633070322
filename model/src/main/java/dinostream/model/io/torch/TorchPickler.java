package dinostream.model.io.torch;

import dinostream.model.io.DType;
import dinostream.model.io.TensorData;

import java.io.ByteArrayOutputStream;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes data.pkl opcode by opcode (pickle protocol 2, as torch.save's default pickle_protocol),
 * using only what torch/_weights_only_unpickler.py accepts. Tensors are written as torch's
 * Tensor._reduce_ex_internal does: _rebuild_tensor_v2 over a persistent-id storage.
 */
final class TorchPickler {
    /** The pickle and the storages its persistent ids name, data/0, data/1, ... in order. */
    record Result(byte[] bytes, List<TensorData> storages) {
    }

    private static final int BATCH = 1000; // as Python's pickle batches SETITEMS/APPENDS
    private static final int MAX_DEPTH = 500;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private final Map<TensorData, Integer> storageKeys = new IdentityHashMap<>();
    private final List<TensorData> storages = new ArrayList<>();
    private final Set<Object> open = Collections.newSetFromMap(new IdentityHashMap<>());

    private TorchPickler() {
    }

    static Result pickle(Map<?, ?> root) {
        if (root == null) throw new IllegalArgumentException("root map is null");
        TorchPickler p = new TorchPickler();
        p.op(0x80).op(2); // PROTO 2
        p.value(root, "root", 0);
        p.op('.'); // STOP
        return new Result(p.out.toByteArray(), List.copyOf(p.storages));
    }

    private void value(Object v, String path, int depth) {
        if (depth > MAX_DEPTH) throw new IllegalArgumentException("values nested deeper than " + MAX_DEPTH + " levels at " + path);
        if (v == null) {
            op('N');
        } else if (v instanceof Boolean b) {
            op(b ? 0x88 : 0x89); // NEWTRUE / NEWFALSE
        } else if (v instanceof Long || v instanceof Integer || v instanceof Short || v instanceof Byte) {
            integer(((Number) v).longValue());
        } else if (v instanceof Double || v instanceof Float) {
            op('G'); // BINFLOAT: big-endian IEEE 754, raw bits so NaN payloads survive
            long bits = Double.doubleToRawLongBits(((Number) v).doubleValue());
            for (int s = 56; s >= 0; s -= 8) out.write((int) (bits >>> s));
        } else if (v instanceof String s) {
            string(s);
        } else if (v instanceof TensorData t) {
            tensor(t);
        } else if (v instanceof Map<?, ?> m) {
            enter(v, path);
            op('}'); // EMPTY_DICT
            Iterator<? extends Map.Entry<?, ?>> it = m.entrySet().iterator();
            while (it.hasNext()) {
                op('('); // MARK
                for (int n = 0; n < BATCH && it.hasNext(); n++) {
                    Map.Entry<?, ?> e = it.next();
                    Object k = e.getKey();
                    if (k instanceof String s) string(s);
                    else if (k instanceof Long || k instanceof Integer) integer(((Number) k).longValue());
                    else throw new IllegalArgumentException("map key " + k + " at " + path + " is a " + typeName(k) + ": only String and Long keys are written");
                    value(e.getValue(), path + "/" + k, depth + 1);
                }
                op('u'); // SETITEMS
            }
            open.remove(v);
        } else if (v instanceof List<?> l) {
            enter(v, path);
            op(']'); // EMPTY_LIST
            for (int i = 0; i < l.size(); ) {
                op('('); // MARK
                for (int n = 0; n < BATCH && i < l.size(); n++, i++) value(l.get(i), path + "/" + i, depth + 1);
                op('e'); // APPENDS
            }
            open.remove(v);
        } else {
            throw new IllegalArgumentException("cannot write a " + typeName(v) + " at " + path + " to a torch file");
        }
    }

    private void enter(Object container, String path) {
        if (!open.add(container)) throw new IllegalArgumentException("the map or list at " + path + " contains itself");
    }

    /** _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict()), contiguous row-major strides. */
    private void tensor(TensorData t) {
        Integer key = storageKeys.get(t);
        if (key == null) {
            key = storages.size();
            storageKeys.put(t, key);
            storages.add(t);
        }
        long[] shape = t.shape();
        long[] stride = new long[shape.length];
        long s = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            stride[i] = s;
            s *= shape[i];
        }
        global("torch._utils", "_rebuild_tensor_v2");
        op('('); // MARK: the arguments
        op('('); // MARK: the persistent id ('storage', type, key, location, numel)
        string("storage");
        global("torch", storageType(t.dtype()));
        string(Integer.toString(key));
        string("cpu");
        integer(t.numel());
        op('t').op('Q'); // TUPLE, BINPERSID
        integer(0);
        longs(shape);
        longs(stride);
        op(0x89); // requires_grad False
        global("collections", "OrderedDict"); // backward_hooks
        op(')').op('R');
        op('t').op('R'); // TUPLE, REDUCE
    }

    private static String storageType(DType d) {
        return switch (d) {
            case F32 -> "FloatStorage";
            case F64 -> "DoubleStorage";
            case I64 -> "LongStorage";
        };
    }

    private void longs(long[] values) {
        if (values.length == 0) {
            op(')'); // EMPTY_TUPLE
            return;
        }
        op('(');
        for (long v : values) integer(v);
        op('t');
    }

    private void global(String module, String name) {
        op('c');
        byte[] b = (module + "\n" + name + "\n").getBytes(StandardCharsets.US_ASCII);
        out.write(b, 0, b.length);
    }

    /** The shortest of BININT1, BININT2, BININT and LONG1 (pickle.py save_long). */
    private void integer(long v) {
        if (v >= 0 && v <= 0xff) {
            op('K').op((int) v);
        } else if (v >= 0 && v <= 0xffff) {
            op('M').op((int) v).op((int) (v >>> 8));
        } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
            op('J');
            int32((int) v);
        } else {
            byte[] be = BigInteger.valueOf(v).toByteArray(); // minimal two's complement, big-endian
            op(0x8a).op(be.length);
            for (int i = be.length - 1; i >= 0; i--) out.write(be[i]);
        }
    }

    private void string(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        op('X'); // BINUNICODE
        int32(b.length);
        out.write(b, 0, b.length);
    }

    private void int32(int v) {
        op(v).op(v >>> 8).op(v >>> 16).op(v >>> 24);
    }

    private TorchPickler op(int b) {
        out.write(b);
        return this;
    }

    private static String typeName(Object o) {
        return o == null ? "null" : o.getClass().getName();
    }
}
