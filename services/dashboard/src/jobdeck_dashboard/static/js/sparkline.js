// A tiny inline SVG line for a row's recent throughput (the bigger charts use uPlot).
const NS = 'http://www.w3.org/2000/svg';

export function sparkline(values, label, width = 120, height = 24) {
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('width', width);
  svg.setAttribute('height', height);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `${label}: ${values.length ? values[values.length - 1] : 'no data'}`);
  if (values.length < 2) return svg;
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`);
  const line = document.createElementNS(NS, 'polyline');
  line.setAttribute('points', points.join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('class', 'sparkline');
  svg.append(line);
  return svg;
}
