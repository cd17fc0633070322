package dinostream.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A sweep's grid file: the demo options every run shares ({@code base}), the budget of images, and
 * the runs, listed ({@code runs}: a name and the options it adds) or coordinate-wise ({@code axes}:
 * per option its values, one run per value with the others at the base's, plus a run {@code base}
 * itself to compare with). Any problem is one line saying where it is.
 *
 * @param images the budget of each run; null: the command line's --images must give it
 */
record SweepGrid(List<String> base, Long images, List<Run> runs) {
    private static final Set<String> KEYS = Set.of("base", "images", "runs", "axes");
    private static final Set<String> RUN_KEYS = Set.of("name", "args");
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._+-]{0,79}");
    /** demo's options: which take a value. */
    private static final picocli.CommandLine.Model.CommandSpec DEMO = new picocli.CommandLine(new DemoCommand()).getCommandSpec();

    /**
     * Options a run may not set: the sweep gives them, one per run. --duration and --rate would make
     * the budget of images something else.
     */
    static final Set<String> RESERVED = Set.of("--images", "--seed", "--out", "--json", "--no-embed", "--duration", "--rate");

    /** One setting: its name (a folder name) and the options it adds to the base's. */
    record Run(String name, List<String> args) {}

    SweepGrid {
        base = List.copyOf(base);
        runs = List.copyOf(runs);
    }

    static SweepGrid parse(String json) {
        JsonNode root;
        try {
            root = Json.MAPPER.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException("not JSON: " + e.getOriginalMessage().replaceAll("\\s+", " "));
        }
        if (root == null || !root.isObject()) throw new IllegalArgumentException("must be a JSON object with \"base\", \"images\" and \"runs\" or \"axes\"");
        for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!KEYS.contains(k)) throw new IllegalArgumentException("unknown key \"" + k + "\" (known: base, images, runs, axes)");
        }
        List<String> base = root.has("base") ? strings(root.get("base"), "base") : List.of();
        checkArgs(base, "base");
        Long images = null;
        if (root.has("images")) {
            JsonNode n = root.get("images");
            if (!n.canConvertToLong() || !n.isIntegralNumber() || n.asLong() < 1) throw new IllegalArgumentException("\"images\" must be a positive integer, got " + n);
            images = n.asLong();
        }

        List<Run> runs = new ArrayList<>();
        JsonNode axes = root.get("axes");
        if (axes != null) {
            if (!axes.isObject()) throw new IllegalArgumentException("\"axes\" must be an object: option -> [values]");
            // The point the axes go out from.
            runs.add(new Run("base", List.of()));
            for (Iterator<Map.Entry<String, JsonNode>> it = axes.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> axis = it.next();
                String option = axis.getKey();
                if (!option.startsWith("--")) throw new IllegalArgumentException("axes: \"" + option + "\" is not an option (--name)");
                List<String> values = strings(axis.getValue(), "axes." + option);
                if (values.isEmpty()) throw new IllegalArgumentException("axes." + option + " has no values");
                for (String v : values) runs.add(new Run(option.substring(2) + "-" + v.replace(',', '_'), List.of(option, v)));
            }
        }
        JsonNode list = root.get("runs");
        if (list != null) {
            if (!list.isArray()) throw new IllegalArgumentException("\"runs\" must be an array of {\"name\": ..., \"args\": [...]}");
            for (int i = 0; i < list.size(); i++) {
                JsonNode r = list.get(i);
                String where = "runs[" + i + "]";
                if (!r.isObject()) throw new IllegalArgumentException(where + " must be an object {\"name\": ..., \"args\": [...]}");
                for (Iterator<String> it = r.fieldNames(); it.hasNext(); ) {
                    String k = it.next();
                    if (!RUN_KEYS.contains(k)) throw new IllegalArgumentException(where + ": unknown key \"" + k + "\" (known: name, args)");
                }
                if (!r.path("name").isTextual()) throw new IllegalArgumentException(where + " needs a \"name\" (a string)");
                runs.add(new Run(r.get("name").asText(), r.has("args") ? strings(r.get("args"), where + ".args") : List.of()));
            }
        }
        if (runs.isEmpty()) throw new IllegalArgumentException("no runs: give \"runs\" or \"axes\"");
        Set<String> names = new HashSet<>();
        for (Run r : runs) {
            if (!NAME.matcher(r.name()).matches()) {
                throw new IllegalArgumentException("run name \"" + r.name() + "\" must be 1-80 of A-Z a-z 0-9 . _ + - (it names a folder)");
            }
            if (!names.add(r.name())) throw new IllegalArgumentException("run name \"" + r.name() + "\" is given twice");
            checkArgs(r.args(), "run " + r.name());
        }
        return new SweepGrid(base, images, runs);
    }

    /**
     * The demo options of one run: the base's without those the run sets, then the run's (demo takes
     * an option once: a run's --batch replaces the base's; --preset and --config are one choice, the model).
     */
    List<String> demoArgs(Run r) {
        Set<String> set = new HashSet<>();
        for (String a : r.args()) if (a.startsWith("--")) set.add(optionName(a));
        if (set.contains("--preset") || set.contains("--config")) set.addAll(List.of("--preset", "--config"));
        List<String> out = new ArrayList<>();
        for (int i = 0; i < base.size(); i++) {
            String a = base.get(i);
            if (a.startsWith("--") && set.contains(optionName(a))) {
                if (!a.contains("=") && takesValue(a)) i++;   // and its value
                continue;
            }
            out.add(a);
        }
        out.addAll(r.args());
        return out;
    }

    private static String optionName(String arg) {
        int eq = arg.indexOf('=');
        return eq < 0 ? arg : arg.substring(0, eq);
    }

    /** Whether demo's option takes a value (an unknown one is demo's to refuse). */
    private static boolean takesValue(String option) {
        picocli.CommandLine.Model.OptionSpec o = DEMO.findOption(option);
        return o == null || o.arity().max() > 0;
    }


    private static void checkArgs(List<String> args, String where) {
        for (String a : args) {
            String option = a.contains("=") ? a.substring(0, a.indexOf('=')) : a;
            if (RESERVED.contains(option)) throw new IllegalArgumentException(where + ": " + option + " is set by the sweep, one per run");
        }
    }

    private static List<String> strings(JsonNode n, String where) {
        if (!n.isArray()) throw new IllegalArgumentException("\"" + where + "\" must be an array of strings");
        List<String> r = new ArrayList<>();
        for (JsonNode e : n) {
            // A number is taken as Jackson writes it (1e-3 as 0.001); a string keeps the file's spelling.
            if (e.isTextual()) r.add(e.asText());
            else if (e.isNumber()) r.add(e.asText());
            else throw new IllegalArgumentException("\"" + where + "\" must hold strings, got " + e);
        }
        return r;
    }

    /** For the table: the runs by name, in the grid's order. */
    Map<String, Run> byName() {
        Map<String, Run> m = new LinkedHashMap<>();
        for (Run r : runs) m.put(r.name(), r);
        return m;
    }
}
