package dinostream.pipeline.job;

import org.apache.flink.streaming.api.environment.LocalStreamEnvironment;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/**
 * Where a command runs its job: on a local MiniCluster of its own ({@code java -jar}, the launcher),
 * or submitted to a Flink cluster by Flink's client ({@code flink run}, the REST API, application
 * mode), which installs its own execution environment before calling the entry point.
 */
public enum Deployment {
    LOCAL, CLUSTER;

    public static Deployment current() {
        return StreamExecutionEnvironment.getExecutionEnvironment() instanceof LocalStreamEnvironment ? LOCAL : CLUSTER;
    }
}
