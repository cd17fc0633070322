package dinostream.pipeline.viz;

import org.jfree.chart.JFreeChart;
import org.jfree.chart.StandardChartTheme;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.RectangleInsets;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.data.Range;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Paint;
import java.awt.RenderingHints;
import java.math.BigDecimal;
import java.math.MathContext;
import java.text.FieldPosition;
import java.text.NumberFormat;
import java.text.ParsePosition;
import java.util.List;
import java.util.Locale;

/**
 * The report's line charts (JFreeChart, drawn off-screen to PNG): one or two quantities over the
 * images seen, one series per model, an optional horizontal reference line (ln K).
 */
final class ReportCharts {
    private ReportCharts() {}

    static final int WIDTH = 560, HEIGHT = 300;

    /** Series colours, distinguishable and print-safe (Tableau 10). */
    private static final Color[] COLOURS = {
            new Color(0x1F77B4), new Color(0xD62728), new Color(0x2CA02C), new Color(0xFF7F0E), new Color(0x9467BD), new Color(0x8C564B)};

    /** One curve: its legend name and points. */
    record Curve(String name, double[] x, double[] y) {}

    /** A horizontal reference line with its label (e.g. ln K = 4.16). */
    record Reference(double y, String label) {}

    /** A chart of {@code curves} against the left axis, and optionally {@code right} against a second axis. */
    static byte[] png(String title, String yLabel, List<Curve> curves, Reference ref, String rightLabel, List<Curve> right) {
        return png(title, yLabel, curves, ref, rightLabel, right, null);
    }

    /**
     * As above; {@code rightCeiling}, when set, is the largest value the right axis must show
     * (momentum: 1, so that a constant 0.996 is not stretched over the whole axis).
     */
    static byte[] png(String title, String yLabel, List<Curve> curves, Reference ref, String rightLabel, List<Curve> right,
                      Double rightCeiling) {
        XYSeriesCollection left = collection(curves);
        NumberAxis x = new NumberAxis("images seen");
        x.setAutoRangeIncludesZero(false);
        NumberAxis y = new NumberAxis(yLabel);
        y.setAutoRangeIncludesZero(false);
        y.setNumberFormatOverride(new TickFormat());
        XYPlot plot = new XYPlot(left, x, y, lineRenderer(0, left));
        plot.setOrientation(PlotOrientation.VERTICAL);
        boolean legend = curves.size() > 1;
        if (right != null && !right.isEmpty()) {
            NumberAxis y2 = new NumberAxis(rightLabel);
            y2.setAutoRangeIncludesZero(false);
            y2.setNumberFormatOverride(new TickFormat());
            plot.setRangeAxis(1, y2);
            XYSeriesCollection rc = collection(right);
            plot.setDataset(1, rc);
            plot.mapDatasetToRangeAxis(1, 1);
            plot.setRenderer(1, lineRenderer(curves.size(), rc));
            if (rightCeiling != null) {
                Range r = y2.getRange();   // the auto range, now that the data is mapped to this axis
                double lo = Math.min(r.getLowerBound(), rightCeiling), span = rightCeiling - lo;
                y2.setRange(lo - Math.max(span * 0.1, 1e-3), rightCeiling + Math.max(span * 0.05, 5e-4));
            }
            legend = true;
        }
        if (ref != null && Double.isFinite(ref.y())) {
            ValueMarker m = new ValueMarker(ref.y(), Color.DARK_GRAY,
                    new BasicStroke(1.2f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[]{6f, 4f}, 0f));
            m.setLabel(ref.label());
            m.setLabelFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
            m.setLabelPaint(Color.DARK_GRAY);
            m.setLabelBackgroundColor(new Color(255, 255, 255, 210));
            // At the right end: runs start with transients on the left, settled curves are easier to clear.
            m.setLabelAnchor(RectangleAnchor.TOP_RIGHT);
            m.setLabelTextAnchor(TextAnchor.BOTTOM_RIGHT);
            m.setLabelOffset(new RectangleInsets(2, 6, 2, 6));
            plot.addRangeMarker(m);
            // A marker does not take part in the axis' auto range; the line must stay in view.
            Range r = y.getRange();
            double lo = Math.min(r.getLowerBound(), ref.y()), hi = Math.max(r.getUpperBound(), ref.y());
            double pad = (hi - lo) * 0.08;
            if (pad <= 0) pad = Math.max(Math.abs(hi) * 0.05, 1e-3);
            y.setRange(lo - pad, hi + pad);
        }
        JFreeChart chart = new JFreeChart(title, new Font(Font.SANS_SERIF, Font.BOLD, 14), plot, legend);
        theme().apply(chart);
        chart.setTitle(new TextTitle(title, new Font(Font.SANS_SERIF, Font.BOLD, 14)));
        chart.setAntiAlias(true);
        chart.setTextAntiAlias(RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xDD, 0xDD, 0xDD));
        plot.setRangeGridlinePaint(new Color(0xDD, 0xDD, 0xDD));
        plot.setOutlinePaint(new Color(0xAA, 0xAA, 0xAA));
        return Png.encode(chart.createBufferedImage(WIDTH, HEIGHT));
    }

    /** Points of every curve, thinned to {@link ReportMetrics#MAX_POINTS}; x need not be sorted. */
    private static XYSeriesCollection collection(List<Curve> curves) {
        XYSeriesCollection c = new XYSeriesCollection();
        for (Curve cv : curves) {
            // autoSort off: the rows are already ordered, and sorting would reorder equal x values.
            XYSeries s = new XYSeries(cv.name(), false, true);
            double[][] p = ReportMetrics.downsample(cv.x(), cv.y());
            for (int i = 0; i < p[0].length; i++) {
                if (!Double.isNaN(p[0][i])) s.add(p[0][i], Double.isFinite(p[1][i]) ? p[1][i] : Double.NaN, false);
            }
            c.addSeries(s);
        }
        return c;
    }

    private static XYLineAndShapeRenderer lineRenderer(int firstColour, XYSeriesCollection data) {
        XYLineAndShapeRenderer r = new XYLineAndShapeRenderer(true, false);
        // Otherwise the theme applied later clears the colours and strokes set here.
        r.setAutoPopulateSeriesPaint(false);
        r.setAutoPopulateSeriesStroke(false);
        for (int i = 0; i < data.getSeriesCount(); i++) {
            r.setSeriesPaint(i, COLOURS[(firstColour + i) % COLOURS.length]);
            r.setSeriesStroke(i, new BasicStroke(1.5f));
            // A line needs two points: a run stopped after its first step still shows its one value.
            if (data.getItemCount(i) == 1) r.setSeriesShapesVisible(i, true);
        }
        return r;
    }

    private static StandardChartTheme theme() {
        StandardChartTheme t = new StandardChartTheme("dinostream");
        t.setExtraLargeFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        t.setLargeFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        t.setRegularFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        t.setSmallFont(new Font(Font.SANS_SERIF, Font.PLAIN, 10));
        Paint ink = new Color(0x22, 0x22, 0x22);
        t.setChartBackgroundPaint(Color.WHITE);
        t.setPlotBackgroundPaint(Color.WHITE);
        t.setTitlePaint(ink);
        t.setAxisLabelPaint(ink);
        t.setTickLabelPaint(ink);
        t.setLegendBackgroundPaint(Color.WHITE);
        t.setLegendItemPaint(ink);
        return t;
    }

    /**
     * Tick labels that stay short from 1e-6 to 1e6: plain decimals with up to four significant
     * digits, scientific for small learning rates ({@code 2.5e-5}), and 0 as {@code 0}.
     */
    static final class TickFormat extends NumberFormat {
        private static final long serialVersionUID = 1L;

        @Override
        public StringBuffer format(double v, StringBuffer to, FieldPosition pos) {
            double a = Math.abs(v);
            String s;
            if (a < 1e-12) s = "0";
            else if (a < 1e-3 || a >= 1e7) s = String.format(Locale.ROOT, "%.2e", v).replaceAll("\\.?0+e", "e").replace("e-0", "e-").replace("e+0", "e").replace("e+", "e");
            else if (a >= 1000 && v == Math.rint(v)) s = String.format(Locale.ROOT, "%,d", (long) v);
            else s = new BigDecimal(v).round(new MathContext(4)).stripTrailingZeros().toPlainString();
            return to.append(s);
        }

        @Override
        public StringBuffer format(long v, StringBuffer to, FieldPosition pos) {
            return format((double) v, to, pos);
        }

        @Override
        public Number parse(String source, ParsePosition pos) {
            return null;   // tick labels are only ever formatted
        }
    }

    /** {@code ln K = 8.32} and similar labels. */
    static String lnK(int k) {
        return String.format(Locale.ROOT, "ln K = %.2f (K = %d, uniform)", Math.log(k), k);
    }
}
