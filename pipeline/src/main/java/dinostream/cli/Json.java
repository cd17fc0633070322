package dinostream.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.PrintWriter;

/** The JSON the commands print: one object on one line of stdout. */
final class Json {
    private Json() {}

    static final ObjectMapper MAPPER = new ObjectMapper().disable(SerializationFeature.INDENT_OUTPUT);

    static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    /** Numbers as a JSON array; null stays null (no /proc, say). */
    static com.fasterxml.jackson.databind.JsonNode array(double[] values) {
        if (values == null) return MAPPER.nullNode();
        com.fasterxml.jackson.databind.node.ArrayNode a = MAPPER.createArrayNode();
        for (double v : values) a.add(v);
        return a;
    }

    /** x to {@code digits} decimals, for readable JSON numbers; NaN and infinities unchanged. */
    static double round(double x, int digits) {
        if (!Double.isFinite(x)) return x;
        double p = Math.pow(10, digits);
        return Math.round(x * p) / p;
    }

    static void print(PrintWriter out, ObjectNode o) {
        try {
            out.println(MAPPER.writeValueAsString(o));
            out.flush();
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("could not write JSON: " + e.getOriginalMessage(), e);
        }
    }
}
