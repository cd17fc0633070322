package dinostream.model.graph;

import ai.onnx.proto.OnnxMl.TensorProto;

/** Element types the graphs use, with their ONNX codes. */
public enum DType {
    FLOAT(TensorProto.DataType.FLOAT_VALUE, 4),
    DOUBLE(TensorProto.DataType.DOUBLE_VALUE, 8),
    INT64(TensorProto.DataType.INT64_VALUE, 8),
    BOOL(TensorProto.DataType.BOOL_VALUE, 1),
    /** Mixed-precision products only; weights of this type are written as initializers of rounded raw data ({@link HalfFloats}). */
    BFLOAT16(TensorProto.DataType.BFLOAT16_VALUE, 2),
    FLOAT16(TensorProto.DataType.FLOAT16_VALUE, 2);

    public final int onnx;
    public final int bytes;

    DType(int onnx, int bytes) {
        this.onnx = onnx;
        this.bytes = bytes;
    }

    public boolean isFloating() {
        return this == FLOAT || this == DOUBLE || this == BFLOAT16 || this == FLOAT16;
    }
}
