// Overview: every queue with live counts, a throughput sparkline, pause / resume; the
// system totals and the alerts raised right now.
import { api, apiPaths } from '../api.js';
import { h, num, notice, replace, when } from '../dom.js';
import { live } from '../live.js';
import { session } from '../session.js';
import { lineChart } from '../chart.js';
import { sparkline } from '../sparkline.js';

const COUNTS = ['waiting', 'active', 'delayed', 'completed', 'failed'];
const HISTORY = 120;
const WORKERS_EVERY_MS = 5000;
// Kept across visits to the page (the module lives as long as the tab): one point per
// stats tick, {t: epoch s, total, byQueue: {queue: jobs/min}}.
const ticks = [];
const sparks = new Map();

function record(system) {
  const byQueue = {};
  for (const [queue, stats] of live.queueStats) byQueue[queue] = stats.throughput;
  ticks.push({ t: system.ts / 1000, total: system.throughput, byQueue });
  if (ticks.length > HISTORY) ticks.shift();
}

function setText(el, value) {
  const text = String(value);
  if (el.textContent !== text) el.textContent = text;
}

class QueueRow {
  constructor(queue, onToggle) {
    this.name = queue.name;
    if (!sparks.has(queue.name)) sparks.set(queue.name, []);
    this.history = sparks.get(queue.name);
    this.cells = {};
    for (const key of [...COUNTS, 'workers', 'throughput']) {
      this.cells[key] = h('td', { class: 'num', 'data-label': key }, '…');
    }
    this.state = h('span', { class: 'state' });
    this.spark = h('td', { class: 'spark', 'data-label': 'jobs/min' });
    this.toggle = session.can('operator')
      ? h('button', { type: 'button', class: 'small', onclick: () => onToggle(this) }) : null;
    this.tr = h('tr', { 'data-queue': queue.name },
      h('th', { scope: 'row' },
        h('a', { href: `#/jobs?queues=${encodeURIComponent(queue.name)}` }, queue.name), ' ', this.state),
      COUNTS.map((key) => this.cells[key]),
      this.cells.workers, this.cells.throughput, this.spark,
      h('td', { class: 'actions' }, this.toggle));
    this.update({ ...queue.counts, workers: queue.workers });
    this.setPaused(queue.paused, queue.pausedBy);
  }

  update(stats) {
    for (const key of Object.keys(this.cells)) {
      if (stats[key] !== undefined) setText(this.cells[key], num(stats[key]));
    }
  }

  stats(payload) {
    this.update(payload);
    this.setPaused(payload.paused);
    this.history.push(payload.throughput);
    if (this.history.length > HISTORY) this.history.shift();
    this.spark.replaceChildren(sparkline(this.history, `${this.name} jobs per minute`));
  }

  setPaused(paused, by) {
    this.paused = paused;
    setText(this.state, paused ? 'paused' : '');
    this.state.className = paused ? 'state paused' : 'state';
    if (by) this.state.title = `paused by ${by}`;
    if (this.toggle) {
      setText(this.toggle, paused ? 'Resume' : 'Pause');
      this.toggle.setAttribute('aria-label', `${paused ? 'Resume' : 'Pause'} ${this.name}`);
    }
  }
}

function systemCard(stats) {
  const t = stats.totals || {};
  const item = (label, value) => h('div', { class: 'stat' }, h('span', { class: 'label' }, label),
    h('strong', {}, typeof value === 'string' ? value : num(value)));
  const w = stats.workers || {};
  return [
    item('queues', stats.queues), item('paused', stats.pausedQueues),
    item('live workers', w.live), item('busy workers', w.busy),
    item('running / slots', `${num(w.activeJobs)} / ${num(w.concurrency)}`),
    item('waiting', t.waiting), item('active', t.active), item('delayed', t.delayed),
    item(`completed (${Math.round(stats.windowS / 60)} min)`, t.completed),
    item(`failed (${Math.round(stats.windowS / 60)} min)`, t.failed),
    item('jobs/min', stats.throughput), item('recorder lag', stats.recorderLag),
  ];
}

function workersTable(workers) {
  if (!workers.length) return h('p', { class: 'muted' }, 'No live workers.');
  return h('div', { class: 'scroll' }, h('table', { class: 'grid compact workers' },
    h('thead', {}, h('tr', {}, ['worker', 'queues', 'busy', 'running', 'heartbeat'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, workers.map((w) => h('tr', {},
      h('td', { 'data-label': 'worker' }, w.instance, h('div', { class: 'muted' }, [w.host, w.pid].filter(Boolean).join(' · '))),
      h('td', { 'data-label': 'queues' }, w.queues.map((q) => `${q.name}:${q.concurrency}`).join(', ')),
      h('td', { 'data-label': 'busy' }, `${num(w.active)} / ${num(w.concurrency)}`),
      h('td', { 'data-label': 'running' }, w.jobs.slice(0, 5).map((j) =>
        h('div', {}, h('a', { href: `#/job/${encodeURIComponent(j.id)}` }, j.id), h('span', { class: 'muted' }, ` ${j.queue}`))),
      w.jobs.length > 5 ? h('div', { class: 'muted' }, `+${w.jobs.length - 5} more`) : null),
      h('td', { 'data-label': 'heartbeat' }, when(w.lastHeartbeat)))))));
}

function alertList(alerts) {
  if (!alerts.size) return [h('p', { class: 'muted' }, 'No alerts.')];
  return [h('ul', { class: 'alerts' }, [...alerts.values()].map((a) =>
    h('li', { class: `alert ${a.severity}` }, h('strong', {}, a.queue), ` ${a.message}`)))];
}

export async function mount(root) {
  const system = h('div', { class: 'stats', 'aria-live': 'off' },
    live.system ? systemCard(live.system) : h('p', { class: 'muted' }, 'Waiting for system stats…'));
  const alerts = h('div', { id: 'alerts' }, alertList(live.alerts));
  const body = h('tbody');
  const message = h('div', { 'aria-live': 'polite' });
  const chartBox = h('div', { class: 'chart', role: 'img', 'aria-label': 'jobs finished per minute, per queue' });
  const workersBox = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const hasWorkers = (await apiPaths()).has('/api/v1/jobs/workers');
  root.append(
    h('h1', {}, 'Overview'),
    h('section', { 'aria-labelledby': 'system-h', class: 'card' }, h('h2', { id: 'system-h' }, 'System'), system),
    h('section', { 'aria-labelledby': 'queues-h' },
      h('h2', { id: 'queues-h' }, 'Queues'), message,
      h('table', { class: 'grid queues' },
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, 'queue'),
          COUNTS.map((c) => h('th', { scope: 'col', class: 'num' }, ['completed', 'failed'].includes(c) ? `${c} (1 h)` : c)),
          h('th', { scope: 'col', class: 'num' }, 'workers'),
          h('th', { scope: 'col', class: 'num' }, 'jobs/min'),
          h('th', { scope: 'col' }, 'trend'),
          h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'actions')))),
        body)),
    hasWorkers ? h('section', { 'aria-labelledby': 'workers-h', class: 'card' }, h('h2', { id: 'workers-h' }, 'Workers'), workersBox) : null,
    h('section', { 'aria-labelledby': 'alerts-h', class: 'card' }, h('h2', { id: 'alerts-h' }, 'Alerts'), alerts),
    h('section', { 'aria-labelledby': 'chart-h', class: 'card' },
      h('h2', { id: 'chart-h' }, 'Throughput (jobs/min)'), chartBox));

  const rows = new Map();
  const releases = [];
  let chart = null;
  let charted = '';

  function drawChart() {
    const queues = [...rows.keys()];
    if (!chart || charted !== queues.join('\n')) {
      chart?.destroy();
      chart = lineChart(chartBox, { series: ['all', ...queues], yLabel: 'jobs/min' });
      charted = queues.join('\n');
    }
    chartBox.dataset.points = String(ticks.length);
    chart.update([
      ticks.map((p) => p.t),
      ticks.map((p) => p.total),
      ...queues.map((q) => ticks.map((p) => p.byQueue[q] ?? null)),
    ]);
  }

  async function toggle(row) {
    const action = row.paused ? 'resume' : 'pause';
    try {
      const state = await api(`/jobs/queues/${encodeURIComponent(row.name)}/${action}`, { method: 'POST' });
      row.setPaused(state.paused);
    } catch (err) {
      replace(message, notice(`Could not ${action} ${row.name}: ${err.message}`, 'error'));
    }
  }

  function addRow(queue) {
    const row = new QueueRow(queue, toggle);
    rows.set(queue.name, row);
    body.append(row.tr);
    if (live.queueStats.has(queue.name)) row.stats(live.queueStats.get(queue.name));
    releases.push(live.watch('stats', { queue: queue.name }));
    return row;
  }

  // The worker list is REST (no event carries it): asked on a stats tick, at most every
  // WORKERS_EVERY_MS however often the ticks come.
  let askingWorkers = false;
  let workersAskedAt = -Infinity;
  async function loadWorkers() {
    if (!hasWorkers || askingWorkers || performance.now() - workersAskedAt < WORKERS_EVERY_MS) return;
    askingWorkers = true;
    workersAskedAt = performance.now();
    try {
      replace(workersBox, workersTable((await api('/jobs/workers')).items));
    } catch (err) {
      replace(workersBox, notice(`Could not list the workers: ${err.message}`, 'error'));
    } finally {
      askingWorkers = false;
    }
  }

  async function load() {
    loadWorkers();
    const list = await api('/jobs/queues');
    for (const queue of list.items) {
      if (!rows.has(queue.name)) addRow(queue);
    }
    if (!list.items.length) replace(message, notice('No queues yet: enqueue a job or start a worker.'));
  }

  const stop = live.listen((batch) => {
    let alertsChanged = false;
    for (const { name, payload } of batch) {
      if (name === 'queueStats') {
        (rows.get(payload.queue) || addRow({ name: payload.queue, counts: {}, workers: 0, paused: payload.paused }))
          .stats(payload);
      } else if (name === 'systemStats') {
        replace(system, systemCard(payload));
        record(payload);
        drawChart();
        loadWorkers();
      } else if (name === 'queueStateChange') {
        rows.get(payload.queue)?.setPaused(payload.paused, payload.by);
      } else if (name === 'alert' || name === 'connected') {
        alertsChanged = true;
      } else if (name === 'resync') {
        load().catch(() => {});
      }
    }
    if (alertsChanged) replace(alerts, alertList(live.alerts));
  });

  try {
    await load();
    drawChart();
  } catch (err) {
    replace(message, notice(`Could not list the queues: ${err.message}`, 'error'));
  }
  return () => {
    chart?.destroy();
    stop();
    releases.forEach((release) => release());
  };
}
