package dinostream.pipeline.job;

import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;

class DeploymentTest {
    /** Flink's client installs its environment as a context factory (protected API: a subclass sets it). */
    static final class ClientContext extends StreamExecutionEnvironment {
        static void install() {
            initializeContextEnvironment(conf -> StreamExecutionEnvironment.createLocalEnvironment(1));
        }

        static void remove() {
            resetContextEnvironment();
        }
    }

    @Test
    void aClientContextMeansACluster() {
        assertEquals(Deployment.LOCAL, Deployment.current());
        ClientContext.install();
        try {
            assertEquals(Deployment.CLUSTER, Deployment.current());
        } finally {
            ClientContext.remove();
        }
        assertEquals(Deployment.LOCAL, Deployment.current());
    }
}
