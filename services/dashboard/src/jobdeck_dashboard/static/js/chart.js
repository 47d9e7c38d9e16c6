// Time-series line charts on uPlot (served by jobdeck from the pinned npm package).
import uPlot from '/vendor/uPlot.esm.js';

const COLORS = ['#2f6feb', '#d9480f', '#2b8a3e', '#862e9c', '#e67700', '#0b7285', '#c2255c', '#5c940d'];

/**
 * A chart filling `el`'s width: x is epoch seconds, one line per name in `series`.
 * Returns {update(data), destroy()} where data is [xs, ys1, ys2, ...] (uPlot's column layout).
 */
export function lineChart(el, { series, height = 220, yLabel = '', xRange = null }) {
  const opts = {
    width: Math.max(280, el.clientWidth || 600),
    height,
    series: [{}, ...series.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 1.5 }))],
    axes: [{}, { label: yLabel, size: 60 }],
    // xRange ([from, to], epoch s) pins the axis to the period asked for, even when only
    // a few buckets have data.
    scales: { x: xRange ? { time: true, range: () => xRange } : { time: true } },
    legend: { live: false },
  };
  const empty = [[], ...series.map(() => [])];
  const plot = new uPlot(opts, empty, el);
  const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, el.clientWidth), height }));
  resize.observe(el);
  return {
    update: (data) => plot.setData(data),
    destroy: () => {
      resize.disconnect();
      plot.destroy();
    },
  };
}
