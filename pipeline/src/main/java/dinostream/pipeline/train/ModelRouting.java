package dinostream.pipeline.train;

import org.apache.flink.runtime.state.KeyGroupRangeAssignment;

import java.io.Serializable;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The trainer's keys. Flink places a key by the hash of the key, so {@code keyBy(modelId)} puts two
 * models on one subtask about half the time. When the models are known up front ({@code --models}),
 * model i of n is keyed as {@code "<id>#<salt>"}, with the smallest salt whose key group lies in the
 * range that trainer subtask i owns at parallelism n: every model gets a subtask of its own. The
 * keys depend on the list (its order and length) and on the maximum parallelism, not on the
 * parallelism a job is later rescaled to; a restore under another list is refused by the trainer
 * ({@link #checkRestored}) instead of silently starting models anew. Without a list, the key is the
 * model id itself. Model ids cannot contain '#' ({@code Manifest.MODEL_ID}).
 */
public final class ModelRouting implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final char SALT = '#';

    private final Map<String, String> keys;
    private final int maxParallelism;

    private ModelRouting(Map<String, String> keys, int maxParallelism) {
        this.keys = keys;
        this.maxParallelism = maxParallelism;
    }

    /** Keys for {@code models} (empty: any model, keyed by its id) under {@code maxParallelism} key groups. */
    public static ModelRouting of(List<String> models, int maxParallelism) {
        Map<String, String> keys = new HashMap<>();
        int n = models.size();
        if (n > maxParallelism) throw new IllegalArgumentException(n + " models need at least " + n + " key groups; max parallelism is " + maxParallelism);
        for (int i = 0; i < n; i++) {
            String id = models.get(i);
            if (keys.containsKey(id)) throw new IllegalArgumentException("model " + id + " is listed twice");
            var range = KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(maxParallelism, n, i);
            for (long salt = 0; ; salt++) {
                String key = id + SALT + salt;
                if (range.contains(KeyGroupRangeAssignment.assignToKeyGroup(key, maxParallelism))) {
                    keys.put(id, key);
                    break;
                }
            }
        }
        return new ModelRouting(keys, maxParallelism);
    }

    /** The trainer key of a model. */
    public String keyOf(String modelId) {
        return keys.isEmpty() ? modelId : keys.getOrDefault(modelId, modelId);
    }

    /** The model a trainer key stands for. */
    public static String modelOf(String key) {
        int i = key.indexOf(SALT);
        return i < 0 ? key : key.substring(0, i);
    }

    /** The trainer subtask that gets a model at {@code parallelism}. */
    public int subtaskOf(String modelId, int parallelism) {
        return KeyGroupRangeAssignment.assignKeyToParallelOperator(keyOf(modelId), maxParallelism, parallelism);
    }

    /**
     * A key found in restored state must be the key this job gives its model; otherwise the model's
     * state would sit unread under the old key while the model started anew under the new one.
     */
    public void checkRestored(String key) {
        String expected = keyOf(modelOf(key));
        if (!expected.equals(key)) {
            throw new IllegalStateException("the restored state holds model " + modelOf(key) + " under trainer key '" + key
                    + "' but this job keys it '" + expected + "': --models differs from the run that wrote the checkpoint"
                    + " (models, their order, or --models given or left out); restore with that run's --models");
        }
    }
}
