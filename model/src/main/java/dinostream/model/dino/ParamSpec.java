package dinostream.model.dino;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One network parameter with its official DINO name (the PyTorch state_dict key), shape, and the
 * flags the optimizer needs. {@link #of(DinoConfig)} lists them in registration order.
 */
public record ParamSpec(String name, long[] shape, Init init, boolean trainable) {
    public enum Init { TRUNC_NORMAL_002, ZEROS, ONES, UNIFORM_FAN_IN }

    /** DINO's parameter groups: no weight decay for biases and 1-D (norm) parameters. */
    public boolean decays() {
        return !(name.endsWith(".bias") || shape.length == 1);
    }

    /** Parameters cancelled while the last layer is frozen. */
    public boolean lastLayer() {
        return name.contains("last_layer");
    }

    public long numel() {
        return Arrays.stream(shape).reduce(1, (a, b) -> a * b);
    }

    public static List<ParamSpec> of(DinoConfig c) {
        List<ParamSpec> p = new ArrayList<>();
        int d = c.dim, g = c.gridSize();
        p.add(new ParamSpec("backbone.cls_token", new long[]{1, 1, d}, Init.TRUNC_NORMAL_002, true));
        p.add(new ParamSpec("backbone.pos_embed", new long[]{1, (long) g * g + 1, d}, Init.TRUNC_NORMAL_002, true));
        p.add(new ParamSpec("backbone.patch_embed.proj.weight", new long[]{d, c.inChans, c.patch, c.patch}, Init.UNIFORM_FAN_IN, true));
        p.add(new ParamSpec("backbone.patch_embed.proj.bias", new long[]{d}, Init.UNIFORM_FAN_IN, true));
        for (int i = 0; i < c.depth; i++) {
            String b = "backbone.blocks." + i + ".";
            norm(p, b + "norm1", d);
            linear(p, b + "attn.qkv", d, 3 * d);
            linear(p, b + "attn.proj", d, d);
            norm(p, b + "norm2", d);
            linear(p, b + "mlp.fc1", d, c.mlpHidden());
            linear(p, b + "mlp.fc2", c.mlpHidden(), d);
        }
        norm(p, "backbone.norm", d);
        linear(p, "head.mlp.0", d, c.headHidden);
        linear(p, "head.mlp.2", c.headHidden, c.headHidden);
        linear(p, "head.mlp.4", c.headHidden, c.bottleneck);
        p.add(new ParamSpec("head.last_layer.weight_g", new long[]{c.outDim, 1}, Init.ONES, !c.normLastLayer));
        p.add(new ParamSpec("head.last_layer.weight_v", new long[]{c.outDim, c.bottleneck}, Init.UNIFORM_FAN_IN, true));
        return p;
    }

    private static void linear(List<ParamSpec> p, String name, int in, int out) {
        p.add(new ParamSpec(name + ".weight", new long[]{out, in}, Init.TRUNC_NORMAL_002, true));
        p.add(new ParamSpec(name + ".bias", new long[]{out}, Init.ZEROS, true));
    }

    private static void norm(List<ParamSpec> p, String name, int d) {
        p.add(new ParamSpec(name + ".weight", new long[]{d}, Init.ONES, true));
        p.add(new ParamSpec(name + ".bias", new long[]{d}, Init.ZEROS, true));
    }
}
