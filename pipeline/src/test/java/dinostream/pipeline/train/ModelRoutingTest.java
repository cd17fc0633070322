package dinostream.pipeline.train;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ModelRoutingTest {
    @Test
    void listedModelsGetASubtaskEach() {
        for (int n = 1; n <= 12; n++) {
            List<String> models = new ArrayList<>();
            for (int i = 0; i < n; i++) models.add("camera-" + (i * 7 + 3));
            ModelRouting r = ModelRouting.of(models, 128);
            Set<Integer> subtasks = new HashSet<>();
            for (int i = 0; i < n; i++) {
                assertEquals(i, r.subtaskOf(models.get(i), n), "model " + i + " of " + n);
                subtasks.add(r.subtaskOf(models.get(i), n));
                assertEquals(models.get(i), ModelRouting.modelOf(r.keyOf(models.get(i))));
            }
            assertEquals(n, subtasks.size());
        }
    }

    @Test
    void plainHashingWouldCollideWhereRoutingDoesNot() {
        // The reason for routing keys: two ids that plain keyBy(modelId) puts on the same of two subtasks.
        List<String> ids = new ArrayList<>();
        for (int i = 0; ids.size() < 2; i++) {
            String id = "m" + i;
            if (org.apache.flink.runtime.state.KeyGroupRangeAssignment.assignKeyToParallelOperator(id, 128, 2) == 0) ids.add(id);
        }
        ModelRouting r = ModelRouting.of(ids, 128);
        assertEquals(Set.of(0, 1), Set.of(r.subtaskOf(ids.get(0), 2), r.subtaskOf(ids.get(1), 2)));
    }

    @Test
    void withoutAListTheKeyIsTheModelId() {
        ModelRouting r = ModelRouting.of(List.of(), 128);
        assertEquals("cam", r.keyOf("cam"));
        assertEquals("cam", ModelRouting.modelOf("cam"));
        r.checkRestored("cam");
    }

    @Test
    void stateKeyedUnderAnotherListIsRefused() {
        ModelRouting before = ModelRouting.of(List.of("a", "b"), 128);
        ModelRouting after = ModelRouting.of(List.of("a", "b", "c"), 128);
        String oldKey = before.keyOf("b");
        if (!oldKey.equals(after.keyOf("b"))) {
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> after.checkRestored(oldKey));
            assertTrue(e.getMessage().contains("--models"), e.getMessage());
        }
        // Keys written without a list are refused under one, and the other way round.
        assertThrows(IllegalStateException.class, () -> after.checkRestored("a"));
        assertThrows(IllegalStateException.class, () -> ModelRouting.of(List.of(), 128).checkRestored(before.keyOf("a")));
        before.checkRestored(before.keyOf("a"));
    }

    @Test
    void duplicatesAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> ModelRouting.of(List.of("a", "a"), 128));
    }
}
