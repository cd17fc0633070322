package dinostream.model.dino;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.util.ArrayList;
import java.util.List;

/**
 * The model and loss configuration. Field names are those of the PyTorch reference's {@code Cfg}
 * (outside this repository; the fields: model/docs/state-format.md, "Metadata"), so a state file
 * written by either side carries the same JSON.
 * Fields after {@code adam_eps} are dinostream's documented additions; a file without them gets
 * the defaults below ({@code local_size} then falls back to the reference fixtures' 8).
 */
@JsonIgnoreProperties(ignoreUnknown = true)
@JsonInclude(JsonInclude.Include.NON_NULL)
public final class DinoConfig {
    @JsonProperty("img_size") public int imgSize = 28;
    @JsonProperty("patch") public int patch = 4;
    @JsonProperty("in_chans") public int inChans = 1;
    @JsonProperty("dim") public int dim = 192;
    @JsonProperty("depth") public int depth = 6;
    @JsonProperty("heads") public int heads = 3;
    @JsonProperty("mlp_ratio") public double mlpRatio = 4.0;
    @JsonProperty("qkv_bias") public boolean qkvBias = true;
    @JsonProperty("ln_eps") public double lnEps = 1e-6;
    @JsonProperty("drop_path") public double dropPath = 0.0;
    @JsonProperty("out_dim") public int outDim = 4096;
    @JsonProperty("head_hidden") public int headHidden = 1024;
    @JsonProperty("bottleneck") public int bottleneck = 128;
    @JsonProperty("norm_last_layer") public boolean normLastLayer = true;
    @JsonProperty("n_local") public int nLocal = 4;
    @JsonProperty("student_temp") public double studentTemp = 0.1;
    @JsonProperty("center_momentum") public double centerMomentum = 0.9;
    @JsonProperty("clip_grad") public double clipGrad = 3.0;
    @JsonProperty("freeze_last_layer") public int freezeLastLayer = 1;
    @JsonProperty("beta1") public double beta1 = 0.9;
    @JsonProperty("beta2") public double beta2 = 0.999;
    @JsonProperty("adam_eps") public double adamEps = 1e-8;

    // dinostream additions (absent from the reference's Cfg; optional when reading).
    /** Side of the local crops in pixels; global crops are {@code img_size}. */
    @JsonProperty("local_size") public int localSize = 8;
    /** Per-channel normalization the crops were made with (recorded for inference export). */
    @JsonProperty("mean") public double[] mean;
    @JsonProperty("std") public double[] std;
    /** Name of the preset this configuration came from, if any. */
    @JsonProperty("preset") public String preset;
    /**
     * Precision of the train step's matrix products: "fp32", "bf16" or "fp16" (model/docs/algorithm.md
     * §5, "Mixed precision"). Null means fp32 and is what fp32 is stored as, so that an fp32
     * configuration's JSON, and with it every fp32 graph and state file, stays as it was.
     */
    @JsonProperty("precision") public String precision;

    /** The precisions a configuration may name. */
    public enum Precision {
        FP32, BF16, FP16;

        public String id() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        public static Precision of(String id) {
            if (id == null) return FP32;
            for (Precision p : values()) if (p.id().equals(id)) return p;
            throw new IllegalArgumentException("precision must be fp32, bf16 or fp16, got " + id);
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper()
            .configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    public static DinoConfig fromJson(String json) {
        try {
            DinoConfig c = JSON.readValue(json, DinoConfig.class);
            c.validate();
            return c;
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("invalid configuration JSON: " + e.getOriginalMessage(), e);
        }
    }

    public String toJson() {
        try {
            return JSON.writeValueAsString(this);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    public DinoConfig copy() {
        return fromJson(toJson());
    }

    /** The products' precision ({@link Precision#FP32} when the field is absent). */
    public Precision precision() {
        return Precision.of(precision);
    }

    /** Sets the precision; fp32 is stored as absent (see {@link #precision}). */
    public DinoConfig precision(Precision p) {
        precision = p == Precision.FP32 ? null : p.id();
        return this;
    }

    public int gridSize() { return imgSize / patch; }
    public int headDim() { return dim / heads; }
    public int mlpHidden() { return (int) (dim * mlpRatio); }
    public int nCrops() { return 2 + nLocal; }

    public double[] meanOrDefault() {
        if (mean != null) return mean;
        double[] m = new double[inChans];
        java.util.Arrays.fill(m, inChans == 3 ? 0 : 0.2860);
        return inChans == 3 ? new double[]{0.485, 0.456, 0.406} : m;
    }

    public double[] stdOrDefault() {
        if (std != null) return std;
        double[] s = new double[inChans];
        java.util.Arrays.fill(s, 0.3530);
        return inChans == 3 ? new double[]{0.229, 0.224, 0.225} : s;
    }

    /** Rejects configurations no graph can be built for, with the reason. */
    public DinoConfig validate() {
        List<String> bad = new ArrayList<>();
        if (patch <= 0 || imgSize <= 0 || imgSize % patch != 0) bad.add("img_size " + imgSize + " must be a positive multiple of patch " + patch);
        if (localSize <= 0 || localSize % patch != 0) bad.add("local_size " + localSize + " must be a positive multiple of patch " + patch);
        if (heads <= 0 || dim % heads != 0) bad.add("dim " + dim + " must be divisible by heads " + heads);
        if (depth <= 0) bad.add("depth must be positive");
        if (inChans <= 0) bad.add("in_chans must be positive");
        if (nLocal < 0) bad.add("n_local must be >= 0");
        if (outDim <= 0 || headHidden <= 0 || bottleneck <= 0) bad.add("head sizes must be positive");
        if (!qkvBias) bad.add("qkv_bias=false is not supported (every DINO ViT uses it)");
        if (dropPath < 0 || dropPath >= 1) bad.add("drop_path must be in [0, 1)");
        if (mean != null && mean.length != inChans) bad.add("mean needs " + inChans + " values");
        if (std != null && std.length != inChans) bad.add("std needs " + inChans + " values");
        // Values that make every step's loss NaN: a streaming job would replay the same step forever.
        if (std != null) for (double v : std) if (!(v > 0) || !Double.isFinite(v)) bad.add("std values must be finite and > 0, got " + v);
        if (mean != null) for (double v : mean) if (!Double.isFinite(v)) bad.add("mean values must be finite, got " + v);
        if (!(studentTemp > 0) || !Double.isFinite(studentTemp)) bad.add("student_temp must be > 0, got " + studentTemp);
        if (!(centerMomentum >= 0 && centerMomentum <= 1)) bad.add("center_momentum must be in [0, 1], got " + centerMomentum);
        if (!(adamEps > 0) || !Double.isFinite(adamEps)) bad.add("adam_eps must be > 0, got " + adamEps);
        if (!(lnEps > 0) || !Double.isFinite(lnEps)) bad.add("ln_eps must be > 0, got " + lnEps);
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1)) bad.add("beta1 and beta2 must be in [0, 1)");
        if (!(clipGrad >= 0) || !Double.isFinite(clipGrad)) bad.add("clip_grad must be >= 0 (0: no clipping), got " + clipGrad);
        if (!(mlpRatio > 0) || !Double.isFinite(mlpRatio)) bad.add("mlp_ratio must be > 0");
        try {
            precision(precision());   // "fp32" written out is stored as absent
        } catch (IllegalArgumentException e) {
            bad.add(e.getMessage());
        }
        if (!bad.isEmpty()) throw new IllegalArgumentException("invalid configuration: " + String.join("; ", bad));
        return this;
    }
}
