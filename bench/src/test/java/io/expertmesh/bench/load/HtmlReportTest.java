package io.expertmesh.bench.load;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The report's chart data, read back from the SVG: what a reader of the page sees, not only that it exists. */
class HtmlReportTest {
    private static final Pattern POLYLINE = Pattern.compile("<polyline [^>]*points=\"([^\"]*)\"");
    private static final Pattern Y_LABEL = Pattern.compile("<text x=\"52\\.0\" y=\"[^\"]*\" text-anchor=\"end\">([^<]*)<");
    private static final Pattern SVG = Pattern.compile("<svg .*?</svg>", Pattern.DOTALL);

    /** The (x, y) points of the chart's first polyline, in SVG coordinates (y grows downwards). */
    private static List<double[]> points(String svg) {
        Matcher m = POLYLINE.matcher(svg);
        assertTrue(m.find(), svg);
        List<double[]> pts = new ArrayList<>();
        for (String p : m.group(1).strip().split(" ")) {
            String[] xy = p.split(",");
            pts.add(new double[] {Double.parseDouble(xy[0]), Double.parseDouble(xy[1])});
        }
        return pts;
    }

    private static void assertRisesMonotonically(String svg) {
        List<double[]> pts = points(svg);
        for (int i = 1; i < pts.size(); i++) {
            assertTrue(pts.get(i)[0] >= pts.get(i - 1)[0], "x goes back at point " + i + ": " + svg);
            assertTrue(pts.get(i)[1] <= pts.get(i - 1)[1], "the fraction falls at point " + i + ": " + svg);
        }
    }

    private static String chart(String page, String title) {
        Matcher m = SVG.matcher(page);
        while (m.find()) {
            if (m.group().contains(">" + title + "<")) {
                return m.group();
            }
        }
        throw new AssertionError("no chart '" + title + "'");
    }

    @Test
    void cdf_unsortedValues_drawnAsARisingStaircase() {
        assertRisesMonotonically(HtmlReport.cdf("t", new double[] {5, 1, 3, 2, 4}));
    }

    @Test
    void cdfSteps_anyOrder_sortedFromZeroToOne() {
        double[][] steps = HtmlReport.cdfSteps(new double[] {3, 1, 2});
        assertArrayEquals(new double[] {1, 0}, steps[0]);
        assertArrayEquals(new double[] {1, 1 / 3.0}, steps[1]);
        assertArrayEquals(new double[] {2, 1 / 3.0}, steps[2]);
        assertArrayEquals(new double[] {3, 1}, steps[5]);
    }

    @Test
    void itlMillis_gapsOfSeveralRequests_sorted() {
        // request 0: gaps 50 ms then 10 ms; request 1: gaps 30 ms then 5 ms: in record order 50, 10, 30, 5
        BenchSummary run = BenchSummary.of("r", 1, 0, 1_000_000_000L, List.of(
                BenchMetricsTest.rec(0, new long[] {100, 150, 160}, new int[] {1, 1, 1}, 170),
                BenchMetricsTest.rec(0, new long[] {100, 130, 135}, new int[] {1, 1, 1}, 140)), Slo.NONE);
        assertArrayEquals(new double[] {5, 10, 30, 50}, HtmlReport.itlMillis(run));
        assertRisesMonotonically(chart(HtmlReport.html(Map.of(), List.of(run)), "ITL CDF (ms)"));
    }

    @Test
    void countTicks_anyTallestBar_wholeNumbersFromZeroCoveringIt() {
        assertArrayEquals(new int[] {0, 1}, HtmlReport.countTicks(0));
        assertArrayEquals(new int[] {0, 1}, HtmlReport.countTicks(1));
        assertArrayEquals(new int[] {0, 1, 2, 3}, HtmlReport.countTicks(3));
        assertArrayEquals(new int[] {0, 3, 6, 9, 12}, HtmlReport.countTicks(10));
        assertArrayEquals(new int[] {0, 25, 50, 75, 100}, HtmlReport.countTicks(100));
    }

    @Test
    void histogram_fewCounts_countAxisLabelledWithWholeNumbers() {
        String svg = HtmlReport.histogram("h", new double[] {1, 2, 2, 3, 3, 3});
        Matcher m = Y_LABEL.matcher(svg);
        List<String> labels = new ArrayList<>();
        while (m.find()) {
            labels.add(m.group(1));
        }
        assertEquals(List.of("0", "1", "2", "3"), labels, svg);
    }
}
