// Exports: start an export of the jobs a Jobs-page filter selects (format, fields, data,
// logs), follow it live, download it; the list of past exports.
import { api } from '../api.js';
import { h, notice, num, progressBar, replace, setProgress, when } from '../dom.js';
import { available, unavailable } from '../features.js';
import { live } from '../live.js';
import { filtersFrom } from './jobs.js';

const PREFIXES = ['/api/v1/jobs/export'];
const FORMATS = { csv: 'CSV', excel: 'Excel (.xlsx)', json: 'JSON', ndjson: 'NDJSON' };
const FIELDS = ['id', 'queue', 'jobName', 'status', 'priority', 'progress', 'attempts', 'maxAttempts',
  'createdAt', 'startedAt', 'finishedAt', 'duration', 'worker', 'errorType', 'errorMessage'];
const FINISHED = new Set(['done', 'failed']);
const NUMBERS = ['minDuration', 'maxDuration', 'minPriority', 'maxPriority', 'priority'];

/** The search filters of a Jobs-page URL as the export body's `filters` object. */
export function exportFilters(params) {
  const { sortBy, sortOrder, limit, cursor, ...filters } = filtersFrom(params);
  for (const key of NUMBERS) if (filters[key] !== undefined) filters[key] = Number(filters[key]);
  return { filters, sortBy, sortOrder };
}

const size = (n) => (n === null || n === undefined ? '–' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);

const rowsText = (done, estimated) => `${num(done)}${estimated ? ` / ${num(estimated)}` : ''}`;

function describe(filters) {
  const parts = Object.entries(filters).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : v}`);
  return parts.length ? parts.join(' · ') : 'every job';
}

export async function mount(root, route) {
  root.append(h('h1', {}, 'Exports'));
  if (!(await available(PREFIXES))) {
    root.append(unavailable('Exports', PREFIXES));
    return undefined;
  }
  const { filters, sortBy, sortOrder } = exportFilters(route.params);
  const message = h('div', { 'aria-live': 'polite' });
  const format = h('select', { name: 'format' }, Object.entries(FORMATS).map(([v, label]) => h('option', { value: v }, label)));
  const boxes = FIELDS.map((f) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'field', value: f, checked: true }), f));
  const includeData = h('input', { type: 'checkbox', name: 'includeData' });
  const includeLogs = h('input', { type: 'checkbox', name: 'includeLogs' });
  const body = h('tbody');
  const rows = new Map();

  const form = h('form', {
    class: 'card', 'aria-label': 'New export',
    onsubmit: async (event) => {
      event.preventDefault();
      const fields = boxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
      const request = {
        format: format.value, filters, fields: fields.length === FIELDS.length ? undefined : fields,
        includeData: includeData.checked, includeLogs: includeLogs.checked, sortBy, sortOrder,
      };
      try {
        const info = await api('/jobs/export', { method: 'POST', body: request });
        replace(message, notice(info.url ? `Export ready: ${info.filename}.` : `Export ${info.filename} started.`));
        show(info);
      } catch (err) {
        replace(message, notice(err.message, 'error'));
      }
    },
  },
  h('h2', {}, 'New export'),
  h('p', {}, 'Jobs: ', h('strong', {}, describe(filters)), ' ',
    h('a', { href: `#/jobs${route.params.toString() ? `?${route.params}` : ''}` }, 'change on the Jobs page')),
  h('div', { class: 'filters' },
    h('label', { class: 'field' }, h('span', {}, 'Format'), format),
    h('fieldset', {}, h('legend', {}, 'Fields'), boxes),
    h('label', { class: 'check' }, includeData, 'data, options and result'),
    h('label', { class: 'check' }, includeLogs, 'log lines')),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Start export')));

  root.append(form, message, h('section', { class: 'card' }, h('h2', {}, 'Past exports'),
    h('div', { class: 'scroll' }, h('table', { class: 'grid exports' },
      h('thead', {}, h('tr', {}, ['file', 'status', 'progress', 'rows', 'size', 'requested', ''].map((c) => h('th', { scope: 'col' }, c)))),
      body))));

  // The latest progress event of each export: a row rebuilt from an older REST answer
  // keeps it, and an export this page has no answer for yet shows up at its first event.
  const latest = new Map();

  function cells(info) {
    const now = FINISHED.has(info.status) ? null : latest.get(info.id);
    const name = info.filename || `export ${info.id.slice(0, 8)}…`;
    const status = now && info.status === 'pending' ? 'running' : info.status;
    const bar = progressBar(Math.max(info.progress ?? 0, now?.progress ?? 0) * 100, `progress of ${name}`);
    const done = Math.max(info.rows ?? 0, now?.rows ?? 0);
    const link = info.url ? h('a', { href: info.url, download: name }, 'Download') : null;
    const remove = h('button', {
      type: 'button', class: 'small', 'aria-label': `Delete ${name}`,
      onclick: async () => {
        try {
          await api(`/jobs/exports/${encodeURIComponent(info.id)}`, { method: 'DELETE' });
          rows.get(info.id)?.remove();
          rows.delete(info.id);
        } catch (err) {
          replace(message, notice(err.message, 'error'));
        }
      },
    }, 'Delete');
    return h('tr', { 'data-export': info.id, 'data-status': status },
      h('td', { 'data-label': 'file' }, name, h('div', { class: 'muted' }, info.filters ? describe(info.filters) : '')),
      h('td', { class: 'status', 'data-label': 'status' }, status, info.error ? h('div', { class: 'muted error-line' }, info.error) : null),
      h('td', { 'data-label': 'progress' }, bar),
      h('td', { class: 'num rows', 'data-label': 'rows' }, rowsText(done, info.rowsEstimated ?? now?.rowsEstimated)),
      h('td', { class: 'num', 'data-label': 'size' }, size(info.bytes)),
      h('td', { 'data-label': 'requested' }, `${when(info.createdAt)}${info.requestedBy ? ` by ${info.requestedBy}` : ''}`),
      h('td', { class: 'actions' }, link, ' ', remove));
  }

  function show(info) {
    const old = rows.get(info.id);
    // Answers can cross: a late "running" never replaces the row of a finished export.
    if (old && FINISHED.has(old.dataset.status) && !FINISHED.has(info.status)) return;
    const tr = cells(info);
    if (old) old.replaceWith(tr);
    else body.prepend(tr);
    rows.set(info.id, tr);
  }

  const asking = new Set();
  async function refresh(id) {
    asking.add(id);
    try {
      show(await api(`/jobs/exports/${encodeURIComponent(id)}`));
    } catch (err) {
      replace(message, notice(err.message, 'error'));
    } finally {
      asking.delete(id);
    }
  }

  // Progress moves the row's bar and row count; an export this page has no row for yet
  // (its start request is still waiting for the file) is shown at once, then fetched.
  const stop = live.listen((batch) => {
    const reload = new Set();
    for (const { name, payload } of batch) {
      const id = payload.exportId;
      if (name === 'exportProgress') {
        const now = { rows: payload.rowsDone, rowsEstimated: payload.rowsEstimated, progress: payload.progress ?? 0 };
        latest.set(id, now);
        const tr = rows.get(id);
        if (!tr) {
          show({ id, status: 'running' });
          if (!asking.has(id)) reload.add(id);
        } else if (!FINISHED.has(tr.dataset.status)) {
          tr.dataset.status = 'running';
          tr.querySelector('td.status').firstChild.textContent = 'running';
          setProgress(tr.querySelector('[role=progressbar]'), now.progress * 100);
          tr.querySelector('td.rows').textContent = rowsText(now.rows, now.rowsEstimated);
        }
      } else if (name === 'exportCompleted' || name === 'exportFailed') {
        reload.add(id);
      }
    }
    reload.forEach(refresh);
  });

  try {
    const list = await api('/jobs/exports', { query: { limit: 50 } });
    for (const info of list.items.reverse()) show(info);
  } catch (err) {
    replace(message, notice(err.message, 'error'));
  }
  return stop;
}
