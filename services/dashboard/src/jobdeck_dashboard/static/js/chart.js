// Time-series line charts on uPlot (served by jobdeck from the pinned npm package).
import uPlot from '/vendor/uPlot.esm.js';

const COLORS = ['#2f6feb', '#d9480f', '#2b8a3e', '#862e9c', '#e67700', '#0b7285', '#c2255c', '#5c940d'];
const DAY = 86400;
// Tick spacings on the time axis, in seconds: never below one second, so labels are times
// of day and dates, not fractions of a second.
const TIME_INCRS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800,
  21600, 43200, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];
const CLOCK_S = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
const CLOCK = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
const DATE = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

/** Labels for time-axis ticks `incr` seconds apart: 14:05:30, 14:05 or Nov 30 (with the
 * date in front of clock times when the axis spans more than a day). */
export function timeLabels(splits, incr) {
  const spansDays = splits.length > 1 && splits[splits.length - 1] - splits[0] >= DAY;
  return splits.map((s) => {
    const d = new Date(s * 1000);
    if (incr >= DAY) return DATE.format(d);
    const clock = (incr < 60 ? CLOCK_S : CLOCK).format(d);
    return spansDays ? `${DATE.format(d)} ${clock}` : clock;
  });
}

/**
 * A chart filling `el`'s width: x is epoch seconds, one line per name in `series`.
 * Returns {update(data), destroy()} where data is [xs, ys1, ys2, ...] (uPlot's column layout).
 */
export function lineChart(el, { series, height = 220, yLabel = '', xRange = null }) {
  const opts = {
    width: Math.max(280, el.clientWidth || 600),
    height,
    series: [{}, ...series.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 1.5 }))],
    axes: [
      { incrs: TIME_INCRS, values: (u, splits, axis, space, incr) => timeLabels(splits, incr) },
      { label: yLabel, size: 60 },
    ],
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
