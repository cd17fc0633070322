package dinostream.model.io;

import java.util.Map;

/**
 * The content of a safetensors file: tensors in the order the header lists them, and the header's
 * {@code __metadata__} strings (empty when the file has none). Both maps are unmodifiable.
 */
public record SafeTensorsFile(Map<String, TensorData> tensors, Map<String, String> metadata) {
}
