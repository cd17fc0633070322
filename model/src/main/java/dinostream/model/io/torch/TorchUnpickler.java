package dinostream.model.io.torch;

import dinostream.model.io.DType;
import dinostream.model.io.TensorData;
import net.razorvine.pickle.IObjectConstructor;
import net.razorvine.pickle.PickleUtils;
import net.razorvine.pickle.Unpickler;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

import static dinostream.model.io.torch.TorchFormatException.printable;

/**
 * The data.pkl of one torch.save archive, unpickled with a whitelist: every GLOBAL goes through
 * {@link #resolve}, so razorvine's own constructors (datetime, arbitrary ClassDicts, ...) are never
 * reached, and nothing from the file is executed. Mirrors what PyTorch's
 * torch/_weights_only_unpickler.py allows, plus argparse.Namespace (the reference's 'args').
 */
final class TorchUnpickler extends Unpickler {
    // Opcodes handled here rather than by razorvine (pickletools names).
    private static final short GLOBAL = 'c', STACK_GLOBAL = 0x93, INST = 'i', OBJ = 'o';
    private static final short EMPTY_DICT = '}', DICT = 'd', SETITEMS = 'u', BUILD = 'b';

    private final ZipFile zip;
    private final String prefix; // "<archive>/"
    private final String name;
    private final boolean bigEndian;
    private final long copyLimit;
    private final Map<String, Storage> storages = new HashMap<>();
    private long copied;

    TorchUnpickler(ZipFile zip, String archive, String name, boolean bigEndian, long storageBytes) {
        this.zip = zip;
        this.prefix = archive + "/";
        this.name = name;
        this.bigEndian = bigEndian;
        // Views of one storage are copied out; a hostile pickle could ask for the same big view
        // thousands of times in a few bytes. Real checkpoints copy at most their storages' size.
        this.copyLimit = 4 * storageBytes + (64L << 20);
    }

    Object unpickle(byte[] pickle) throws IOException {
        try {
            return loads(pickle);
        } catch (TorchFormatException e) {
            throw e;
        } catch (Refusal e) {
            throw e.reason();
        } catch (IOException | RuntimeException e) {
            throw fail(prefix + "data.pkl is corrupt (" + e.getClass().getSimpleName() + ": " + printable(String.valueOf(e.getMessage())) + ")");
        } finally {
            storages.clear();
        }
    }

    @Override
    protected Object dispatch(short key) throws IOException {
        switch (key) {
            case GLOBAL -> {
                String module = PickleUtils.readline(input);
                String cls = PickleUtils.readline(input);
                stack.add(resolve(module, cls));
            }
            case STACK_GLOBAL -> {
                Object cls = stack.pop();
                Object module = stack.pop();
                if (!(module instanceof String m) || !(cls instanceof String c)) throw fail("STACK_GLOBAL without a module and class name");
                stack.add(resolve(m, c));
            }
            case INST, OBJ -> throw fail("pickle opcode " + (key == INST ? "INST" : "OBJ") + " builds arbitrary objects; torch.save never writes it");
            // razorvine builds dicts as HashMaps (and SETITEMS through one): keep the file's order.
            case EMPTY_DICT -> stack.add(new LinkedHashMap<>());
            case DICT -> {
                Map<Object, Object> m = new LinkedHashMap<>();
                putPairs(m, stack.pop_all_since_marker());
                stack.add(m);
            }
            case SETITEMS -> {
                List<Object> items = stack.pop_all_since_marker();
                if (!(stack.peek() instanceof Map<?, ?> m)) throw fail("SETITEMS on a " + typeName(stack.peek()));
                @SuppressWarnings("unchecked") Map<Object, Object> target = (Map<Object, Object>) m;
                putPairs(target, items);
            }
            case BUILD -> build();
            default -> {
                return super.dispatch(key);
            }
        }
        return NO_RETURN_VALUE;
    }

    private void putPairs(Map<Object, Object> target, List<Object> items) throws TorchFormatException {
        if (items.size() % 2 != 0) throw fail("odd number of items in a dict");
        for (int i = 0; i < items.size(); i += 2) target.put(items.get(i), items.get(i + 1));
    }

    /** BUILD sets an object's state: the Namespace's attributes; an OrderedDict's attributes are dropped. */
    private void build() throws TorchFormatException {
        Object state = stack.pop();
        Object inst = stack.peek();
        if (inst instanceof NamespaceMap ns && state instanceof Map<?, ?> attrs) {
            ns.putAll(attrs);
        } else if (!(inst instanceof OrderedDictMap)) {
            // An OrderedDict's state is its __dict__ (state_dict()'s _metadata), not items; torch's
            // _weights_only_unpickler.py does inst.__dict__.update(state), which has no map view.
            throw fail("pickle BUILD (setting object state) on a " + typeName(inst) + " is not supported");
        }
    }

    /** The only globals a torch checkpoint needs; anything else is refused by name. */
    private IObjectConstructor resolve(String module, String cls) throws TorchFormatException {
        String qualified = module + "." + cls;
        switch (qualified) {
            case "collections.OrderedDict":
                return new Global(qualified, args -> {
                    if (args.length != 0) throw new IllegalArgumentException("collections.OrderedDict with arguments");
                    return new OrderedDictMap();
                });
            case "argparse.Namespace":
                return new Global(qualified, args -> {
                    if (args.length != 0) throw new IllegalArgumentException("argparse.Namespace with arguments");
                    return new NamespaceMap();
                });
            case "torch._utils._rebuild_tensor_v2":
                return new Global(qualified, this::rebuildTensor);
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                // (data, requires_grad, backward_hooks[, state]): a Parameter is its data here.
                return new Global(qualified, args -> {
                    if (args.length < 3 || !(args[0] instanceof TensorData t)) throw new IllegalArgumentException(qualified + " without a tensor");
                    return t;
                });
            case "torch.Size":
                return new Global(qualified, args -> {
                    if (args.length != 1) throw new IllegalArgumentException("torch.Size needs one tuple");
                    return new ArrayList<>(sequence(args[0], "torch.Size"));
                });
            case "_codecs.encode":
                // Protocol 2 writes Python 3 bytes as _codecs.encode(str, 'latin1').
                return new Global(qualified, args -> {
                    if (args.length != 2 || !(args[0] instanceof String s) || !("latin1".equals(args[1]) || "latin-1".equals(args[1]))) {
                        throw new IllegalArgumentException("_codecs.encode other than (str, 'latin1')");
                    }
                    return s.getBytes(StandardCharsets.ISO_8859_1);
                });
            default:
                break;
        }
        if (module.equals("torch") && cls.endsWith("Storage")) {
            return new StorageType(qualified, switch (cls) {
                case "FloatStorage" -> DType.F32;
                case "DoubleStorage" -> DType.F64;
                case "LongStorage" -> DType.I64;
                default -> null; // refused when a tensor uses it, with the type's name
            });
        }
        throw fail("refusing to load class " + printable(qualified) + ": a DINO checkpoint holds only tensors, dicts, lists and numbers");
    }

    /**
     * ('storage', storage_type, key, location, numel): the storage's bytes are the archive entry
     * data/key (torch/serialization.py, _load's persistent_load). The location is ignored: all
     * tensors load to the host.
     */
    @Override
    protected Object persistentLoad(Object pid) {
        try {
            if (!(pid instanceof Object[] id) || id.length != 5 || !"storage".equals(id[0])) {
                throw fail("persistent id " + printable(describe(pid)) + " is not a ('storage', type, key, location, numel) tuple");
            }
            if (!(id[1] instanceof StorageType type)) throw fail("storage type " + typeName(id[1]) + " is not a torch storage class");
            if (type.dtype == null) {
                throw fail("storage type " + type.qualified + " is not supported: dinostream reads float32, float64 and int64 tensors");
            }
            if (!(id[2] instanceof String key)) throw fail("storage key " + typeName(id[2]) + " is not a string");
            long numel = integer(id[4], "storage numel");
            Storage s = storages.get(key);
            if (s == null) {
                s = loadStorage(type.dtype, key, numel);
                storages.put(key, s);
            } else if (s.dtype != type.dtype || s.numel != numel) {
                throw fail("storage data/" + printable(key) + " is used as " + type.qualified + " of " + numel + " elements and as " + s.dtype + " of " + s.numel);
            }
            return s;
        } catch (TorchFormatException e) {
            throw new Refusal(e);
        }
    }

    private Storage loadStorage(DType dtype, String key, long numel) throws TorchFormatException {
        String entryName = prefix + "data/" + key;
        ZipEntry entry = zip.getEntry(entryName);
        if (entry == null) throw fail("missing storage " + printable(entryName) + " (the archive is incomplete)");
        long need;
        try {
            need = Math.multiplyExact(numel, dtype.size());
        } catch (ArithmeticException e) {
            throw fail("storage " + printable(entryName) + " claims " + numel + " elements");
        }
        if (numel < 0 || need > Integer.MAX_VALUE - 8) throw fail("storage " + printable(entryName) + " of " + numel + " " + dtype + " elements is negative or over 2 GiB");
        if (entry.getSize() < need) {
            throw fail("storage " + printable(entryName) + " holds " + entry.getSize() + " bytes, its header says " + numel + " " + dtype + " elements (" + need + " bytes)");
        }
        byte[] bytes = new byte[(int) need];
        try (InputStream in = zip.getInputStream(entry)) {
            int n = in.readNBytes(bytes, 0, bytes.length);
            if (n != bytes.length) throw fail("storage " + printable(entryName) + " is truncated: " + n + " of " + need + " bytes");
        } catch (IOException e) {
            throw fail("cannot read storage " + printable(entryName) + " (" + printable(String.valueOf(e.getMessage())) + ")");
        }
        ByteBuffer data = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (bigEndian) swapBytes(bytes, dtype.size());
        return new Storage(dtype, numel, data, key);
    }

    private static void swapBytes(byte[] b, int width) {
        for (int i = 0; i + width <= b.length; i += width) {
            for (int lo = i, hi = i + width - 1; lo < hi; lo++, hi--) {
                byte t = b[lo];
                b[lo] = b[hi];
                b[hi] = t;
            }
        }
    }

    /**
     * torch/_utils.py _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
     * backward_hooks[, metadata]): a view of the storage, copied out unless it is the whole
     * storage in row-major order.
     */
    private Object rebuildTensor(Object[] args) {
        try {
            if (args.length < 6 || args.length > 7) throw fail("_rebuild_tensor_v2 with " + args.length + " arguments");
            if (!(args[0] instanceof Storage s)) throw fail("_rebuild_tensor_v2 on a " + typeName(args[0]) + ", not a storage");
            long offset = integer(args[1], "storage offset");
            long[] shape = longs(sequence(args[2], "tensor size"));
            long[] stride = longs(sequence(args[3], "tensor stride"));
            String what = "tensor of size " + Arrays.toString(shape) + ", stride " + Arrays.toString(stride) + ", offset " + offset + " in storage data/" + printable(s.key);
            if (shape.length != stride.length) throw fail(what + ": size and stride differ in length");
            long numel = 1;
            long last = offset;
            long bytes;
            try {
                for (int i = 0; i < shape.length; i++) {
                    if (shape[i] < 0 || stride[i] < 0) throw fail(what + ": negative size or stride");
                    numel = Math.multiplyExact(numel, shape[i]);
                    if (shape[i] > 0) last = Math.addExact(last, Math.multiplyExact(shape[i] - 1, stride[i]));
                }
                bytes = Math.multiplyExact(numel, s.dtype.size());
            } catch (ArithmeticException e) {
                throw fail(what + ": too many elements");
            }
            if (offset < 0) throw fail(what + ": negative offset");
            if (numel == 0) return TensorData.zeros(s.dtype, shape);
            if (last >= s.numel) throw fail(what + " reaches element " + last + ", the storage holds " + s.numel + " elements");
            if (offset == 0 && numel == s.numel && rowMajor(shape, stride)) {
                return TensorData.wrap(s.dtype, shape, s.data.duplicate()); // TensorData is immutable: share, no copy
            }
            copied += bytes;
            if (copied > copyLimit) throw fail("tensor views copy more than " + copyLimit + " bytes out of the storages; refusing");
            return TensorData.wrap(s.dtype, shape, copyView(s, offset, shape, stride));
        } catch (TorchFormatException e) {
            throw new Refusal(e);
        }
    }

    private static boolean rowMajor(long[] shape, long[] stride) {
        long expected = 1;
        for (int i = shape.length - 1; i >= 0; i--) {
            if (shape[i] != 1 && stride[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    /** Gathers a strided view into a fresh row-major buffer; the innermost run is copied in bulk when dense. */
    private static ByteBuffer copyView(Storage s, long offset, long[] shape, long[] stride) {
        int es = s.dtype.size();
        long numel = 1;
        for (long d : shape) numel *= d;
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(numel * es)).order(ByteOrder.LITTLE_ENDIAN);
        byte[] src = s.data.array();
        byte[] dst = out.array();
        int rank = shape.length;
        if (rank == 0) {
            System.arraycopy(src, (int) (offset * es), dst, 0, es);
            return out;
        }
        long inner = shape[rank - 1];
        long innerStride = stride[rank - 1];
        long[] index = new long[rank - 1];
        int d = 0;
        for (long row = 0, rows = numel / inner; row < rows; row++) {
            long base = offset;
            for (int i = 0; i < rank - 1; i++) base += index[i] * stride[i];
            if (innerStride == 1) {
                System.arraycopy(src, (int) (base * es), dst, d, (int) (inner * es));
                d += (int) (inner * es);
            } else {
                for (long j = 0; j < inner; j++, d += es) System.arraycopy(src, (int) ((base + j * innerStride) * es), dst, d, es);
            }
            for (int i = rank - 2; i >= 0 && ++index[i] == shape[i]; i--) index[i] = 0;
        }
        return out;
    }

    private long integer(Object o, String what) throws TorchFormatException {
        if (o instanceof Integer || o instanceof Long) return ((Number) o).longValue();
        throw fail(what + " is a " + typeName(o) + ", not an integer");
    }

    private long[] longs(List<Object> items) throws TorchFormatException {
        long[] out = new long[items.size()];
        for (int i = 0; i < out.length; i++) out[i] = integer(items.get(i), "dimension");
        return out;
    }

    private List<Object> sequence(Object o, String what) {
        if (o instanceof Object[] a) return Arrays.asList(a);
        if (o instanceof List<?> l) {
            @SuppressWarnings("unchecked") List<Object> list = (List<Object>) l;
            return list;
        }
        throw new Refusal(fail(what + " is a " + typeName(o) + ", not a tuple"));
    }

    static String typeName(Object o) {
        if (o == null) return "None";
        if (o instanceof Global g) return "class object " + g.qualified;
        if (o instanceof StorageType t) return "class object " + t.qualified;
        if (o instanceof Storage) return "bare storage";
        if (o instanceof Object[]) return "tuple";
        return o.getClass().getSimpleName();
    }

    private static String describe(Object o) {
        return o instanceof Object[] a ? Arrays.deepToString(a) : String.valueOf(o);
    }

    private TorchFormatException fail(String problem) {
        return new TorchFormatException(name, problem);
    }

    /** Carries a TorchFormatException through razorvine's IObjectConstructor, which cannot throw IOException. */
    static final class Refusal extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Refusal(TorchFormatException e) {
            super(e.getMessage(), e, false, false);
        }

        TorchFormatException reason() {
            return (TorchFormatException) getCause();
        }
    }

    /** A whitelisted callable; razorvine's REDUCE/NEWOBJ call construct(args). */
    record Global(String qualified, IObjectConstructor body) implements IObjectConstructor {
        @Override
        public Object construct(Object[] args) {
            return body.construct(args);
        }
    }

    /** torch.FloatStorage etc.: only ever an argument of a persistent id, never called. */
    record StorageType(String qualified, DType dtype) implements IObjectConstructor {
        @Override
        public Object construct(Object[] args) {
            throw new IllegalArgumentException("calling " + qualified);
        }
    }

    /** One storage entry, read once however many tensors view it. */
    record Storage(DType dtype, long numel, ByteBuffer data, String key) {
    }

    static final class OrderedDictMap extends LinkedHashMap<Object, Object> {
        private static final long serialVersionUID = 1L;
    }

    static final class NamespaceMap extends LinkedHashMap<Object, Object> {
        private static final long serialVersionUID = 1L;
    }
}
