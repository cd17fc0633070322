package dinostream.pipeline.viz;

/**
 * matplotlib's perceptually uniform "inferno" colour map (black, purple, orange, pale yellow),
 * interpolated linearly between ten of its colours: dark means little attention, bright much,
 * and it stays readable in gray print.
 */
final class Colormap {
    private Colormap() {}

    /** inferno at 0, 1/9, ..., 1 (viridisLite's {@code inferno(10)}). */
    private static final int[] INFERNO = {
            0x000004, 0x1B0C41, 0x4A0C6B, 0x781C6D, 0xA52C60, 0xCF4446, 0xED6925, 0xFB9B06, 0xF7D13D, 0xFCFFA4};

    /** The RGB colour of {@code t} in [0, 1] (clamped; NaN maps to 0). */
    static int inferno(double t) {
        if (!(t > 0)) return INFERNO[0];
        if (t >= 1) return INFERNO[INFERNO.length - 1];
        double x = t * (INFERNO.length - 1);
        int i = (int) x;
        double f = x - i;
        int a = INFERNO[i], b = INFERNO[i + 1];
        int r = (int) Math.round(((a >> 16) & 0xFF) * (1 - f) + ((b >> 16) & 0xFF) * f);
        int g = (int) Math.round(((a >> 8) & 0xFF) * (1 - f) + ((b >> 8) & 0xFF) * f);
        int bl = (int) Math.round((a & 0xFF) * (1 - f) + (b & 0xFF) * f);
        return (r << 16) | (g << 8) | bl;
    }
}
