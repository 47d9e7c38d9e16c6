// Analytics: success trends (chart + trend label per queue), performance percentiles,
// failure fingerprints with recommendations and "retry these N", resource usage and alerts.
// The view, range and queues live in the URL (#/analytics?view=failures&range=7d).
import { api } from '../api.js';
import { lineChart } from '../chart.js';
import { ask, tell } from '../dialog.js';
import { duration, h, notice, num, replace, when } from '../dom.js';
import { available, unavailable } from '../features.js';
import { session } from '../session.js';

const PREFIXES = ['/api/v1/jobs/analytics/'];
const VIEWS = {
  trends: 'Success trends',
  performance: 'Performance',
  failures: 'Failures',
  resources: 'Resource usage',
};
const RANGES = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };

const pct = (rate) => (rate === null || rate === undefined ? '–' : `${(rate * 100).toFixed(1)} %`);
const bytes = (n) => {
  if (n === null || n === undefined) return '–';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
};

const span = (range) => [Date.parse(range.start) / 1000, Date.parse(range.end) / 1000];

function table(columns, rows, className = '') {
  return h('div', { class: 'scroll' }, h('table', { class: `grid ${className}` },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label)))),
    h('tbody', {}, rows.length ? rows.map((row) => h('tr', {}, columns.map((c) =>
      h('td', { class: c.num ? 'num' : null, 'data-label': c.label }, c.value(row)))))
      : h('tr', {}, h('td', { colspan: columns.length, class: 'muted' }, 'Nothing in this range.')))));
}

function trendBadge(info) {
  return h('span', { class: `trend t-${info.trend}`, title: info.changePp === null || info.changePp === undefined ? '' : `${info.changePp.toFixed(1)} pp over the window` }, info.trend.replace('_', ' '));
}

function trendsView(data, charts) {
  const box = h('div', { class: 'chart', role: 'img', 'aria-label': 'success rate per bucket, per queue' });
  const series = [data.overall, ...data.queues];
  const times = [...new Set(series.flatMap((s) => s.buckets.map((b) => Date.parse(b.start) / 1000)))].sort((a, b) => a - b);
  const rate = (s) => {
    const byTime = new Map(s.buckets.map((b) => [Date.parse(b.start) / 1000, b.successRate]));
    return times.map((t) => (byTime.has(t) && byTime.get(t) !== null ? byTime.get(t) * 100 : null));
  };
  const section = [
    h('section', { class: 'card' }, h('h2', {}, 'Success rate (%)'), box),
    h('section', { class: 'card' }, h('h2', {}, 'By queue'), table([
      { label: 'queue', value: (s) => s.queue || 'all queues' },
      { label: 'trend', value: (s) => trendBadge(s.trend) },
      { label: 'finished', num: true, value: (s) => num(s.totals.finished) },
      { label: 'completed', num: true, value: (s) => num(s.totals.completed) },
      { label: 'failed', num: true, value: (s) => num(s.totals.failed) },
      { label: 'cancelled', num: true, value: (s) => num(s.totals.cancelled) },
      { label: 'success', num: true, value: (s) => pct(s.totals.successRate) },
    ], series, 'trends'), h('p', { class: 'muted' }, data.method.description)),
  ];
  requestAnimationFrame(() => {
    const chart = lineChart(box, { series: series.map((s) => s.queue || 'all'), yLabel: '%', xRange: span(data.range) });
    chart.update([times, ...series.map(rate)]);
    charts.push(chart);
  });
  return section;
}

function performanceView(data) {
  const columns = (first) => [
    first,
    { label: 'finished', num: true, value: (p) => num(p.finished) },
    { label: 'jobs/h', num: true, value: (p) => num(Math.round(p.throughputPerHour)) },
    { label: 'p50', num: true, value: (p) => duration(p.durationMs.p50) },
    { label: 'p95', num: true, value: (p) => duration(p.durationMs.p95) },
    { label: 'p99', num: true, value: (p) => duration(p.durationMs.p99) },
    { label: 'max', num: true, value: (p) => duration(p.durationMs.max) },
    { label: 'wait p95', num: true, value: (p) => duration(p.waitMs.p95) },
    { label: 'failure', num: true, value: (p) => pct(p.failureRate) },
    { label: 'retry', num: true, value: (p) => pct(p.retryRate) },
  ];
  return [
    h('section', { class: 'card' }, h('h2', {}, 'By queue'),
      table([...columns({ label: 'queue', value: (p) => p.queue || 'all queues' }),
        { label: 'waiting', num: true, value: (p) => num(p.live?.waiting) },
        { label: 'active', num: true, value: (p) => num(p.live?.active) },
        { label: 'workers', num: true, value: (p) => num(p.live?.workers) }],
      [data.overall, ...data.queues], 'performance')),
    h('section', { class: 'card' }, h('h2', {}, 'By job name'),
      table(columns({ label: 'job', value: (p) => `${p.name} (${p.queue})` }), data.jobNames, 'performance')),
    h('p', { class: 'muted' }, `Percentiles within ${(data.percentileError * 100).toFixed(2)} % (log-scale histograms).`),
  ];
}

async function retryFingerprint(fp, filters, message) {
  const body = { fingerprint: fp.fingerprint, startDate: filters.startDate, endDate: filters.endDate };
  if (filters.queues) body.queues = filters.queues;
  try {
    const dry = await api('/jobs/bulk/retry', { method: 'POST', body: { ...body, dryRun: true } });
    if (!dry.matched) {
      await tell('Nothing to retry', [h('p', {}, 'No failed job currently has this error as its latest failure.')]);
      return;
    }
    const ok = await ask(`Retry ${num(dry.matched)} failed job${dry.matched === 1 ? '' : 's'}?`, [
      h('p', {}, h('strong', {}, fp.errorType), `: ${fp.pattern}`),
      h('p', { class: 'muted' }, `First of them: ${(dry.sampleIds || []).slice(0, 5).join(', ')}`),
    ], { okText: 'Retry' });
    if (!ok) return;
    const result = await api('/jobs/bulk/retry', { method: 'POST', body: { ...body, limit: 10000 } });
    await tell('Retry: results', [
      h('p', {}, Object.entries(result.counts).map(([k, v]) => `${k}: ${v}`).join(' · ')),
      result.remaining ? h('p', {}, `${num(result.remaining)} more match: run it again for the next batch.`) : null,
    ]);
  } catch (err) {
    replace(message, notice(`Retry failed: ${err.message}`, 'error'));
  }
}

function failuresView(data, filters, message) {
  const operator = session.can('operator');
  return [
    h('section', { class: 'card' }, h('h2', {}, 'Recommendations'),
      data.recommendations.length ? h('ul', { class: 'recommendations' }, data.recommendations.map((r) =>
        h('li', { class: `alert ${r.severity}` }, h('strong', {}, r.queue || r.name || r.rule), ` ${r.message} `,
          h('code', {}, Object.entries(r.evidence).map(([k, v]) => `${k}=${typeof v === 'number' ? +v.toFixed(3) : v}`).join(' ')))))
        : h('p', { class: 'muted' }, 'None: nothing in this range calls for action.')),
    h('section', { class: 'card' }, h('h2', {}, 'Top errors'), table([
      { label: 'error', value: (f) => [h('strong', {}, f.errorType), h('div', { class: 'muted' }, f.pattern)] },
      { label: 'count', num: true, value: (f) => num(f.count) },
      { label: 'queues', value: (f) => f.queues.join(', ') },
      { label: 'jobs', value: (f) => f.jobNames.join(', ') },
      { label: 'last seen', value: (f) => when(f.lastSeen) },
      { label: 'sample', value: (f) => h('a', { href: `#/job/${encodeURIComponent(f.sampleJobId)}` }, 'job') },
      ...(operator ? [{ label: 'action', value: (f) => h('button', { type: 'button', class: 'small', onclick: () => retryFingerprint(f, filters, message) }, 'Retry these') }] : []),
    ], data.fingerprints, 'fingerprints')),
    h('section', { class: 'card' }, h('h2', {}, 'Failure rate by queue'), table([
      { label: 'queue', value: (c) => c.queue || 'all queues' },
      { label: 'failed', num: true, value: (c) => num(c.failed) },
      { label: 'finished', num: true, value: (c) => num(c.finished) },
      { label: 'failure', num: true, value: (c) => pct(c.failureRate) },
    ], [data.totals, ...data.byQueue])),
    h('section', { class: 'card' }, h('h2', {}, 'Failing most'), table([
      { label: 'job', value: (c) => `${c.name} (${c.queue})` },
      { label: 'failed', num: true, value: (c) => num(c.failed) },
      { label: 'failure', num: true, value: (c) => pct(c.failureRate) },
    ], data.topFailingJobs)),
  ];
}

function resourcesView(data, charts) {
  const parts = [];
  if (data.alerts.length) {
    parts.push(h('section', { class: 'card' }, h('h2', {}, 'Resource alerts'), table([
      { label: 'rule', value: (a) => a.kind },
      { label: 'subject', value: (a) => a.subject },
      { label: 'value', num: true, value: (a) => num(+a.value.toFixed(1)) },
      { label: 'threshold', num: true, value: (a) => num(a.threshold) },
      { label: 'state', value: (a) => h('span', { class: a.breached ? 'badge s-failed' : 'badge s-completed' }, a.breached ? 'breached' : 'ok') },
    ], data.alerts)));
  }
  if (data.processes) {
    const box = h('div', { class: 'chart', role: 'img', 'aria-label': 'CPU per process' });
    parts.push(h('section', { class: 'card' }, h('h2', {}, 'Processes'), box, table([
      { label: 'service', value: (p) => p.service },
      { label: 'instance', value: (p) => p.instance },
      { label: 'CPU', num: true, value: (p) => `${p.latest.cpuPct.toFixed(1)} %` },
      { label: 'RSS', num: true, value: (p) => bytes(p.latest.rssBytes) },
    ], data.processes)));
    requestAnimationFrame(() => {
      const times = [...new Set(data.processes.flatMap((p) => p.series.map((s) => Date.parse(s.ts) / 1000)))].sort((a, b) => a - b);
      const chart = lineChart(box, { series: data.processes.map((p) => p.instance), yLabel: 'CPU %', xRange: span(data.range) });
      chart.update([times, ...data.processes.map((p) => {
        const at = new Map(p.series.map((s) => [Date.parse(s.ts) / 1000, s.cpuPct]));
        return times.map((t) => at.get(t) ?? null);
      })]);
      charts.push(chart);
    });
  }
  if (data.redis) {
    const r = data.redis;
    parts.push(h('section', { class: 'card' }, h('h2', {}, 'Redis'), h('dl', { class: 'facts' },
      h('dt', {}, 'memory'), h('dd', {}, `${bytes(r.usedMemory)}${r.maxmemory ? ` of ${bytes(r.maxmemory)} (${r.memoryPct.toFixed(1)} %)` : ' (no limit)'}`),
      h('dt', {}, 'ops/s'), h('dd', {}, num(r.opsPerS)),
      h('dt', {}, 'clients'), h('dd', {}, num(r.clients)),
      h('dt', {}, 'event stream'), h('dd', {}, `${num(r.streamLength)} entries, recorder behind ${num(r.recorderBehind)}`))));
  }
  if (data.postgres) {
    const p = data.postgres;
    parts.push(h('section', { class: 'card' }, h('h2', {}, 'Postgres'), h('dl', { class: 'facts' },
      h('dt', {}, 'database'), h('dd', {}, bytes(p.databaseBytes)),
      h('dt', {}, 'connections'), h('dd', {}, `${num(p.connections)} of ${num(p.maxConnections)}`),
      h('dt', {}, 'cache hit ratio'), h('dd', {}, pct(p.cacheHitRatio)),
      h('dt', {}, 'rows (estimates)'), h('dd', {}, Object.entries(p.rows).map(([k, v]) => `${k} ${num(v)}`).join(', ')),
      h('dt', {}, 'largest'), h('dd', {}, p.largest.slice(0, 5).map((rel) => `${rel.name} ${bytes(rel.bytes)}`).join(', ')))));
  }
  parts.push(h('section', { class: 'card' }, h('h2', {}, 'Queues'), table([
    { label: 'queue', value: (q) => q.queue },
    { label: 'worker-seconds', num: true, value: (q) => num(Math.round(q.workerSeconds)) },
    { label: 'active', num: true, value: (q) => num(q.active) },
    { label: 'workers', num: true, value: (q) => num(q.workers) },
    { label: 'jobs/worker', num: true, value: (q) => (q.jobsPerWorker === null ? '–' : q.jobsPerWorker.toFixed(1)) },
    { label: 'Redis', num: true, value: (q) => bytes(q.redisBytes) },
  ], data.queues)));
  return parts;
}

const ENDPOINTS = {
  trends: 'success-trends', performance: 'performance', failures: 'failures', resources: 'resource-usage',
};

export async function mount(root, route) {
  root.append(h('h1', {}, 'Analytics'));
  if (!(await available(PREFIXES))) {
    root.append(unavailable('Analytics', PREFIXES));
    return undefined;
  }
  const params = route.params;
  const view = VIEWS[params.get('view')] ? params.get('view') : 'trends';
  const range = RANGES[params.get('range')] ? params.get('range') : '24h';
  const queues = params.get('queues') ? params.get('queues').split(',') : null;
  const link = (changes) => {
    const state = { view, range, queues: queues ? queues.join(',') : null, ...changes };
    return `#/analytics?${new URLSearchParams(Object.entries(state).filter(([, v]) => v))}`;
  };
  const queueSelect = h('select', {
    'aria-label': 'Queue', onchange: () => { location.hash = link({ queues: queueSelect.value || null }); },
  }, h('option', { value: '' }, 'all queues'));
  api('/jobs/queues').then((list) => {
    for (const q of list.items) queueSelect.append(h('option', { value: q.name, selected: queues?.length === 1 && queues[0] === q.name }, q.name));
  }).catch(() => {});
  const message = h('div', { 'aria-live': 'polite' });
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const charts = [];
  root.append(
    h('nav', { class: 'tabs', 'aria-label': 'Analytics views' }, Object.entries(VIEWS).map(([key, label]) =>
      h('a', { href: link({ view: key }), 'aria-current': key === view ? 'page' : null }, label))),
    h('div', { class: 'toolbar' }, h('span', { class: 'muted' }, 'Range:'), Object.keys(RANGES).map((r) =>
      h('a', { href: link({ range: r }), class: 'button', 'aria-current': r === range ? 'true' : null }, r)),
    queueSelect),
    message, body);

  const end = new Date();
  const filters = { startDate: new Date(end.getTime() - RANGES[range]).toISOString(), endDate: end.toISOString(), queues };
  try {
    const data = await api(`/jobs/analytics/${ENDPOINTS[view]}`, { query: filters });
    const render = {
      trends: () => trendsView(data, charts),
      performance: () => performanceView(data),
      failures: () => failuresView(data, filters, message),
      resources: () => resourcesView(data, charts),
    }[view];
    replace(body, render(), h('p', { class: 'muted' },
      `${when(data.range.start)} → ${when(data.range.end)} · ${data.range.buckets} × ${data.range.interval}`,
      data.freshness.cached ? ' · cached' : '',
      data.freshness.recorderBehind ? ` · ${num(data.freshness.recorderBehind)} events not recorded yet` : ''));
  } catch (err) {
    replace(body, notice(err.message, 'error'));
  }
  return () => charts.forEach((chart) => chart.destroy());
}
