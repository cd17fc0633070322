package dinostream.pipeline.job;

import dinostream.pipeline.embed.EmbedderOptions;
import dinostream.pipeline.train.TrainerOptions;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;

/** Everything the topology needs: Kafka, checkpointing, the trainer's and the embedder's settings. */
public class JobOptions {
    public String bootstrap;
    public String imagesTopic = "images";
    public String embeddingsTopic = "embeddings";
    public String deadLetterTopic = "dead-letters";
    /** The model of records that name none. */
    public String modelId = "default";
    /**
     * The models this job trains ({@code --models}); records naming another go to the dead letters
     * (UNKNOWN_MODEL), and each model gets its own trainer subtask where parallelism allows. Empty:
     * any model a record names.
     */
    public List<String> models = new ArrayList<>();
    public String groupId = "dinostream";
    /** Client settings passed to every Kafka client (security, sizes). */
    public Map<String, String> kafkaProperties = new LinkedHashMap<>();
    public boolean exactlyOnce = true;
    /** The most bytes of an original value a dead letter keeps (the rest: its size and SHA-256). */
    public int deadLetterValueBytes = dinostream.pipeline.decode.DecodeFunction.DEFAULT_DEAD_LETTER_VALUE_BYTES;
    public boolean embed = true;
    public int parallelism = 0;
    /** Stop at the offsets that are latest when the job starts (tests, backfills); else run forever. */
    public boolean bounded = false;

    /** Where the job runs: locally the job sets checkpointing itself; on a cluster the cluster's configuration does. */
    public Deployment deployment = Deployment.LOCAL;
    /** Checkpoint interval; null on a cluster: the cluster's execution.checkpointing.interval. */
    public Duration checkpointInterval = Duration.ofSeconds(30);
    /** Checkpoint folder URI, retained on cancel; null on a cluster: the cluster's execution.checkpointing.dir. */
    public String checkpointDir;
    /** A checkpoint or savepoint folder to restore from; null: start fresh. */
    public String restorePath;

    public TrainerOptions trainer = new TrainerOptions();
    public EmbedderOptions embedder = new EmbedderOptions();
    /** The online k-NN probe on labelled images; size 0 turns it off. */
    public dinostream.pipeline.probe.ProbeOperator.Options probe = new dinostream.pipeline.probe.ProbeOperator.Options();

    /** The broker's transaction.max.timeout.ms defaults to 15 min; the connector's 1 h default would be refused. */
    public Duration transactionTimeout = Duration.ofMinutes(15);
}
