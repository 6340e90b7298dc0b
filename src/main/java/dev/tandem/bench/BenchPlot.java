package dev.tandem.bench;

import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;

/** Draws a {@link SpeculativeBench.Report} as a PNG: speed-up (left axis) and acceptance (right axis) against draft length. */
public final class BenchPlot {
    private BenchPlot() {}

    public static void writePng(SpeculativeBench.Report report, String title, Path file) {
        List<SpeculativeBench.Row> fixed = report.runs().stream().filter(r -> !r.adaptive()).toList();
        if (fixed.isEmpty()) throw new IllegalArgumentException("nothing to plot: the report has no fixed draft lengths");
        double[] x = fixed.stream().mapToDouble(SpeculativeBench.Row::draftMax).toArray();
        double[] speedup = fixed.stream().mapToDouble(SpeculativeBench.Row::speedup).toArray();
        double[] acceptance = fixed.stream().mapToDouble(r -> 100 * r.acceptanceRate()).toArray();
        XYChart chart = new XYChartBuilder().width(900).height(540).title(title).xAxisTitle("draft length (draft-max)").build();
        chart.setYAxisGroupTitle(0, "speed-up over plain decoding (x)");
        chart.setYAxisGroupTitle(1, "acceptance (%)");
        XYSeries s = chart.addSeries("speed-up", x, speedup);
        s.setMarker(SeriesMarkers.CIRCLE);
        s.setYAxisGroup(0);
        double[] one = new double[x.length];
        java.util.Arrays.fill(one, 1.0);
        XYSeries even = chart.addSeries("plain (1.0x)", x, one);
        even.setMarker(SeriesMarkers.NONE);
        even.setYAxisGroup(0);
        report.runs().stream().filter(SpeculativeBench.Row::adaptive).findFirst().ifPresent(a -> {
            double[] level = new double[x.length];
            java.util.Arrays.fill(level, a.speedup());
            XYSeries ad = chart.addSeries(String.format("adaptive (%.2fx)", a.speedup()), x, level);
            ad.setMarker(SeriesMarkers.NONE);
            ad.setYAxisGroup(0);
        });
        XYSeries acc = chart.addSeries("acceptance", x, acceptance);
        acc.setMarker(SeriesMarkers.SQUARE);
        acc.setYAxisGroup(1);
        chart.getStyler().setYAxisGroupPosition(1, org.knowm.xchart.style.Styler.YAxisPosition.Right);
        try {
            BitmapEncoder.saveBitmap(chart, file.toString(), BitmapEncoder.BitmapFormat.PNG);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the plot to " + file, e);
        }
    }
}
