package dinostream.pipeline.probe;

/** One k-NN score of a model's teacher on the labelled probe set. */
public class ProbeResult {
    public String modelId;
    public long step;
    public double top1;
    public double top5;
    public int bank;
    public int queries;

    public ProbeResult() {}
}
