package dinostream.pipeline.job;

import org.apache.flink.streaming.api.environment.LocalStreamEnvironment;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

import java.lang.reflect.Field;

/**
 * Where a command runs its job: on a local MiniCluster of its own ({@code java -jar}, the launcher),
 * or submitted to a Flink cluster by Flink's client ({@code flink run}, the REST API, application
 * mode), which installs a context environment factory before calling the entry point.
 */
public enum Deployment {
    LOCAL, CLUSTER;

    public static Deployment current() {
        // Reading Flink's context factories directly takes ~50 ms; creating an environment to ask its
        // type takes ~0.5 s, which every local command would pay at start. The latter is the fallback.
        try {
            Field global = StreamExecutionEnvironment.class.getDeclaredField("contextEnvironmentFactory");
            Field perThread = StreamExecutionEnvironment.class.getDeclaredField("threadLocalContextEnvironmentFactory");
            global.setAccessible(true);
            perThread.setAccessible(true);
            boolean context = global.get(null) != null || ((ThreadLocal<?>) perThread.get(null)).get() != null;
            return context ? CLUSTER : LOCAL;
        } catch (ReflectiveOperationException | RuntimeException e) {
            return StreamExecutionEnvironment.getExecutionEnvironment() instanceof LocalStreamEnvironment ? LOCAL : CLUSTER;
        }
    }
}
