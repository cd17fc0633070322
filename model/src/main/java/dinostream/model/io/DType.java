package dinostream.model.io;

/** Element types a DINO state holds, named as in the safetensors header. */
public enum DType {
    F32(4), F64(8), I64(8);

    private final int size;

    DType(int size) {
        this.size = size;
    }

    /** Bytes per element. */
    public int size() {
        return size;
    }

    /** The header's {@code dtype} string. */
    public String safetensorsName() {
        return name();
    }

    /** The type for a header {@code dtype} string, or null when it is not one of ours. */
    public static DType fromSafetensorsName(String name) {
        for (DType t : values()) {
            if (t.name().equals(name)) return t;
        }
        return null;
    }
}
