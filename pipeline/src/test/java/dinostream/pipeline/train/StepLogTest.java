package dinostream.pipeline.train;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

class StepLogTest {
    static ObjectNode line(String model, long step, double loss) {
        ObjectNode o = new ObjectMapper().createObjectNode();
        o.put("model_id", model);
        o.put("step", step);
        o.put("loss", loss);
        return o;
    }

    @Test
    void aReplayDoesNotLogAStepTwice(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("metrics.jsonl");
        try (StepLog log = new StepLog(f)) {
            for (int s = 1; s <= 3; s++) log.append(line("a", s, 1.0));
            log.append(line("b", 1, 1.0));
        }
        // A restarted job replays steps 2 and 3 of a (from its last checkpoint), then goes on.
        try (StepLog log = new StepLog(f)) {
            for (int s = 2; s <= 4; s++) log.append(line("a", s, 2.0));
            log.append(line("b", 2, 2.0));
        }
        List<String> lines = Files.readAllLines(f);
        assertEquals(6, lines.size(), String.join("\n", lines));
        assertEquals(List.of(1L, 2L, 3L, 4L), lines.stream().map(l -> parse(l)).filter(n -> n.get("model_id").asText().equals("a"))
                .map(n -> n.get("step").asLong()).toList());
        assertEquals(1.0, parse(lines.get(2)).get("loss").asDouble(), "the first run's values stay");
    }

    static com.fasterxml.jackson.databind.JsonNode parse(String l) {
        try {
            return new ObjectMapper().readTree(l);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
