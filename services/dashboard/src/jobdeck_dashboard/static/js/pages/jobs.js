// Jobs: every search filter, column sort, cursor paging, live rows, bulk retry / cancel.
// The filters live in the URL (#/jobs?status=failed&queues=a,b), so a view can be shared.
import { api } from '../api.js';
import { ask, tell } from '../dialog.js';
import { badge, duration, h, notice, num, progressBar, replace, setProgress, when } from '../dom.js';
import { live } from '../live.js';
import { session } from '../session.js';

const STATUSES = ['waiting', 'delayed', 'active', 'completed', 'failed', 'cancelled'];
const COLUMNS = [
  { key: 'name', label: 'name', sort: 'name' },
  { key: 'queue', label: 'queue', sort: 'queue' },
  { key: 'status', label: 'status', sort: 'status' },
  { key: 'progress', label: 'progress' },
  { key: 'attempts', label: 'attempts', sort: 'attempts', num: true },
  { key: 'priority', label: 'priority', sort: 'priority', num: true },
  { key: 'createdAt', label: 'created', sort: 'createdAt' },
  { key: 'duration', label: 'duration', sort: 'duration', num: true },
];
const SORTS = ['createdAt', 'startedAt', 'finishedAt', 'duration', 'priority', 'status', 'name', 'queue', 'attempts'];
const LISTS = ['status', 'queues'];
const SCALARS = ['search', 'startDate', 'endDate', 'dateField', 'minDuration', 'maxDuration',
  'minPriority', 'maxPriority', 'sortBy', 'sortOrder', 'limit', 'cursor'];

/** The search request the URL describes. */
export function filtersFrom(params) {
  const f = {};
  for (const key of LISTS) {
    const value = params.get(key);
    if (value) f[key] = value.split(',').filter(Boolean);
  }
  for (const key of SCALARS) {
    const value = params.get(key);
    if (value) f[key] = value;
  }
  return f;
}

function hashFor(filters) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) {
    if (value === undefined || value === '' || (Array.isArray(value) && !value.length)) continue;
    params.set(key, Array.isArray(value) ? value.join(',') : value);
  }
  const text = params.toString();
  return `#/jobs${text ? `?${text}` : ''}`;
}

const localInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
};
const isoFromLocal = (value) => (value ? new Date(value).toISOString() : undefined);

function filterForm(filters, queues, onApply) {
  const field = (label, input) => h('label', { class: 'field' }, h('span', {}, label), input);
  const text = h('input', { type: 'search', name: 'search', value: filters.search || '', placeholder: 'name or id' });
  const statusBoxes = STATUSES.map((s) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'status', value: s, checked: filters.status?.includes(s) }), s));
  const queueSelect = h('select', { name: 'queues', multiple: true, size: Math.min(5, Math.max(2, queues.length)) },
    queues.map((q) => h('option', { value: q, selected: filters.queues?.includes(q) }, q)));
  const dateField = h('select', { name: 'dateField' },
    ['createdAt', 'startedAt', 'finishedAt'].map((d) => h('option', { value: d, selected: filters.dateField === d }, d.replace('At', ''))));
  const start = h('input', { type: 'datetime-local', name: 'startDate', value: localInput(filters.startDate) });
  const end = h('input', { type: 'datetime-local', name: 'endDate', value: localInput(filters.endDate) });
  const numberInput = (name, min, max) => h('input', { type: 'number', name, min, max, value: filters[name] || '', inputmode: 'numeric' });
  const minDur = numberInput('minDuration', 0);
  const maxDur = numberInput('maxDuration', 0);
  const minPri = numberInput('minPriority', 0, 100);
  const maxPri = numberInput('maxPriority', 0, 100);
  const sortBy = h('select', { name: 'sortBy' }, SORTS.map((key) =>
    h('option', { value: key, selected: (filters.sortBy || 'createdAt') === key }, key)));
  const sortOrder = h('select', { name: 'sortOrder' }, ['desc', 'asc'].map((o) =>
    h('option', { value: o, selected: (filters.sortOrder || 'desc') === o }, o === 'desc' ? 'descending' : 'ascending')));
  const limit = h('select', { name: 'limit' }, ['25', '50', '100', '200'].map((n) =>
    h('option', { value: n, selected: (filters.limit || '50') === n }, n)));

  const form = h('form', {
    class: 'filters', role: 'search', 'aria-label': 'Job filters',
    onsubmit: (event) => {
      event.preventDefault();
      onApply({
        search: text.value.trim(),
        status: statusBoxes.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value),
        queues: [...queueSelect.selectedOptions].map((o) => o.value),
        dateField: start.value || end.value ? dateField.value : undefined,
        startDate: isoFromLocal(start.value),
        endDate: isoFromLocal(end.value),
        minDuration: minDur.value, maxDuration: maxDur.value,
        minPriority: minPri.value, maxPriority: maxPri.value,
        limit: limit.value === '50' ? undefined : limit.value,
        sortBy: sortBy.value === 'createdAt' ? undefined : sortBy.value,
        sortOrder: sortOrder.value === 'desc' ? undefined : sortOrder.value,
      });
    },
  },
  field('Search', text),
  h('fieldset', { class: 'statuses' }, h('legend', {}, 'Status'), statusBoxes),
  field('Queues', queueSelect),
  h('fieldset', { class: 'range' }, h('legend', {}, 'Date range'), field('field', dateField), field('from', start), field('to', end)),
  h('fieldset', { class: 'range' }, h('legend', {}, 'Duration (ms)'), field('min', minDur), field('max', maxDur)),
  h('fieldset', { class: 'range' }, h('legend', {}, 'Priority'), field('min', minPri), field('max', maxPri)),
  h('fieldset', { class: 'range' }, h('legend', {}, 'Sort'), field('by', sortBy), field('order', sortOrder)),
  field('Rows', limit),
  h('div', { class: 'buttons' },
    h('button', { type: 'submit', class: 'primary' }, 'Apply'),
    h('a', { href: '#/jobs', class: 'button' }, 'Reset')));
  // Open on wide screens; on a phone the filters fold away under their summary.
  return h('details', { class: 'filters card', open: !matchMedia('(max-width: 720px)').matches },
    h('summary', {}, 'Filters'), form);
}

class JobRow {
  constructor(job, selectable, onSelect) {
    this.job = job;
    this.check = selectable ? h('input', {
      type: 'checkbox', 'aria-label': `select ${job.id}`, onchange: () => onSelect(this),
    }) : null;
    this.status = h('td', { 'data-label': 'status' });
    this.bar = progressBar(job.progress, `progress of ${job.id}`);
    this.attempts = h('td', { class: 'num', 'data-label': 'attempts' });
    this.duration = h('td', { class: 'num', 'data-label': 'duration' });
    this.tr = h('tr', { 'data-job': job.id },
      selectable ? h('td', { class: 'select' }, this.check) : null,
      h('td', { 'data-label': 'name' }, h('a', { href: `#/job/${encodeURIComponent(job.id)}` }, job.jobName),
        h('div', { class: 'muted id' }, job.id)),
      h('td', { 'data-label': 'queue' }, job.queue),
      this.status,
      h('td', { 'data-label': 'progress' }, this.bar),
      this.attempts,
      h('td', { class: 'num', 'data-label': 'priority' }, String(job.priority)),
      h('td', { 'data-label': 'created' }, when(job.createdAt)),
      this.duration);
    this.render();
  }

  render() {
    const { job } = this;
    replace(this.status, badge(job.status), job.errorMessage ? h('div', { class: 'muted error-line' }, job.errorMessage) : null);
    this.attempts.textContent = `${job.attempts}/${job.maxAttempts}`;
    this.duration.textContent = duration(job.duration);
    setProgress(this.bar, job.progress);
  }

  /** Take one event; true when the row needs a full render (progress alone does not). */
  apply(name, p) {
    const { job } = this;
    if (name === 'jobProgress') {
      job.progress = p.progress;
      setProgress(this.bar, p.progress);
      return false;
    }
    job.status = p.status;
    job.attempts = Math.max(job.attempts, p.attempt);
    if (p.durationMs !== undefined) job.duration = p.durationMs;
    if (p.status === 'completed') job.progress = 100;
    if (p.errorMessage !== undefined) job.errorMessage = p.errorMessage;
    if (p.status === 'active' || p.status === 'waiting') job.errorMessage = null;
    return true;
  }
}

// What the API's bulk filter form selects for each action, and the date its range is on
// (none for cancel: there it would be the creation time of unfinished jobs only).
const FILTER_FORMS = {
  retry: { statuses: ['failed'], dateField: 'finishedAt' },
  cancel: { statuses: ['waiting', 'delayed', 'active'], dateField: null },
};
const EXPRESSIBLE = new Set(['status', 'queues', 'startDate', 'endDate', 'dateField', 'sortBy', 'sortOrder', 'limit', 'cursor']);

/** The bulk-by-filter body of `action` ('retry' or 'cancel') selecting exactly the jobs these
 * filters list, when the API's filter form can express them (statuses the action takes,
 * queues, for retry a finished-at range); else null. */
export function bulkFilterFor(action, filters, allQueues) {
  const form = FILTER_FORMS[action];
  if (Object.keys(filters).some((key) => !EXPRESSIBLE.has(key))) return null;
  const status = filters.status || [];
  if (!status.length || status.some((s) => !form.statuses.includes(s))) return null;
  if ((filters.startDate || filters.endDate) && filters.dateField !== form.dateField) return null;
  const queues = filters.queues || allQueues;
  if (!queues.length) return null;
  return { queues, status, startDate: filters.startDate, endDate: filters.endDate };
}

function resultsTable(response) {
  return [
    h('p', {}, Object.entries(response.counts).map(([k, v]) => `${k}: ${v}`).join(' · ')),
    h('table', { class: 'grid compact' },
      h('thead', {}, h('tr', {}, h('th', {}, 'job'), h('th', {}, 'outcome'), h('th', {}, 'reason'))),
      h('tbody', {}, response.results.map((r) => h('tr', {},
        h('td', {}, r.id), h('td', {}, r.outcome), h('td', {}, r.reason || ''))))),
  ];
}

export async function mount(root, route) {
  const filters = filtersFrom(route.params);
  const operator = session.can('operator');
  const message = h('div', { 'aria-live': 'polite' });
  const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
  const fresh = h('button', { type: 'button', class: 'small', hidden: true, onclick: () => load() });
  const selectAll = operator ? h('input', { type: 'checkbox', 'aria-label': 'select every row on this page' }) : null;
  const selected = new Set();
  const retryBtn = h('button', { type: 'button', disabled: true, onclick: () => bulk('retry') }, 'Retry selected');
  const cancelBtn = h('button', { type: 'button', disabled: true, onclick: () => bulk('cancel') }, 'Cancel selected');
  const allButtons = {
    retry: h('button', { type: 'button', hidden: true, onclick: () => actOnAll('retry') }),
    cancel: h('button', { type: 'button', hidden: true, onclick: () => actOnAll('cancel') }),
  };
  const toolbar = operator ? h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Bulk actions' },
    retryBtn, cancelBtn, allButtons.retry, allButtons.cancel) : null;
  const body = h('tbody');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  const rows = new Map();
  let releases = [];

  const sortHeader = (col) => {
    if (!col.sort) return h('th', { scope: 'col' }, col.label);
    const active = (filters.sortBy || 'createdAt') === col.sort;
    const order = filters.sortOrder || 'desc';
    const next = active && order === 'desc' ? 'asc' : 'desc';
    return h('th', { scope: 'col', class: col.num ? 'num' : null, 'aria-sort': active ? (order === 'asc' ? 'ascending' : 'descending') : null },
      h('a', { href: hashFor({ ...filters, cursor: undefined, sortBy: col.sort, sortOrder: next }), class: 'sort' },
        col.label, active ? (order === 'asc' ? ' ▲' : ' ▼') : ''));
  };

  let queues = [];
  try {
    queues = (await api('/jobs/queues')).items.map((q) => q.name);
  } catch (err) {
    replace(message, notice(`Could not list the queues: ${err.message}`, 'error'));
  }
  root.append(
    h('h1', {}, 'Jobs'),
    filterForm(filters, queues, (next) => { location.hash = hashFor(next); }),
    message,
    h('div', { class: 'listhead' }, summary, fresh, toolbar,
      h('a', { class: 'button', href: `#/exports${route.params.toString() ? `?${route.params}` : ''}` }, 'Export these jobs…')),
    h('div', { class: 'scroll' }, h('table', { class: 'grid jobs' },
      h('thead', {}, h('tr', {}, operator ? h('th', { class: 'select' }, selectAll) : null, COLUMNS.map(sortHeader))),
      body)),
    pager);

  function updateSelection() {
    retryBtn.disabled = cancelBtn.disabled = selected.size === 0;
    retryBtn.textContent = `Retry selected (${selected.size})`;
    cancelBtn.textContent = `Cancel selected (${selected.size})`;
    if (selectAll) selectAll.checked = selected.size > 0 && selected.size === rows.size;
  }
  selectAll?.addEventListener('change', () => {
    for (const row of rows.values()) {
      row.check.checked = selectAll.checked;
      if (selectAll.checked) selected.add(row.job.id);
      else selected.delete(row.job.id);
    }
    updateSelection();
  });

  async function bulk(action) {
    const ids = [...selected];
    const ok = await ask(`${action === 'retry' ? 'Retry' : 'Cancel'} ${ids.length} job${ids.length === 1 ? '' : 's'}?`,
      [h('p', {}, action === 'retry'
        ? 'Failed and cancelled jobs run again as their next attempt; others are skipped.'
        : 'Waiting, delayed and running jobs are cancelled; finished ones are skipped.')],
      { okText: action === 'retry' ? 'Retry' : 'Cancel jobs' });
    if (!ok) return;
    try {
      const response = await api(`/jobs/bulk/${action}`, { method: 'POST', body: { jobIds: ids } });
      await tell(`${action === 'retry' ? 'Retry' : 'Cancel'}: results`, resultsTable(response));
    } catch (err) {
      replace(message, notice(`${action} failed: ${err.message}`, 'error'));
    }
    load();
  }

  const ALL_TEXT = {
    retry: {
      title: (n) => `Retry all ${num(n)} failed job${n === 1 ? '' : 's'} matching this filter?`,
      detail: 'They run again as their next attempt, oldest first, up to 10,000 in one go.',
      ok: 'Retry all',
    },
    cancel: {
      title: (n) => `Cancel all ${num(n)} job${n === 1 ? '' : 's'} matching this filter?`,
      detail: 'Waiting and delayed jobs leave their queue and running ones are stopped, oldest first, up to 10,000 in one go.',
      ok: 'Cancel all',
    },
  };

  // "All N matching": the API's filter form counts them first (dry run), then acts.
  async function actOnAll(action) {
    const body = bulkFilterFor(action, filters, queues);
    const text = ALL_TEXT[action];
    try {
      const dry = await api(`/jobs/bulk/${action}`, { method: 'POST', body: { ...body, dryRun: true } });
      const ok = await ask(text.title(dry.matched), [h('p', {}, text.detail)], { okText: text.ok });
      if (!ok) return;
      const response = await api(`/jobs/bulk/${action}`, { method: 'POST', body: { ...body, limit: 10000 } });
      await tell(`${text.ok}: results`, [
        resultsTable(response),
        response.remaining ? h('p', {}, `${num(response.remaining)} more match: run it again for the next batch.`) : null,
      ]);
    } catch (err) {
      replace(message, notice(`${text.ok} failed: ${err.message}`, 'error'));
    }
    load();
  }

  // Live rows: the rooms of the jobs on screen only, so a busy queue's other jobs cost
  // this tab nothing.
  function watchRows(items) {
    releases.forEach((release) => release());
    releases = items.map((j) => live.watch('job', { jobId: j.id, queue: j.queue }));
  }

  // "N new jobs": on each stats tick, the first page asks how many match now.
  let loadedTotal = null;
  let counting = false;
  async function countNew() {
    if (counting || filters.cursor || loadedTotal === null) return;
    counting = true;
    try {
      const now = await api('/jobs/search', { query: { ...filters, limit: 1 } });
      const added = now.total - loadedTotal;
      fresh.hidden = added <= 0;
      fresh.textContent = `${num(added)} new job${added === 1 ? '' : 's'} — refresh`;
    } catch {
      // The next tick asks again.
    } finally {
      counting = false;
    }
  }

  async function load() {
    fresh.hidden = true;
    const query = { ...filters };
    if (!query.limit) query.limit = 50;
    let page;
    try {
      page = await api('/jobs/search', { query });
    } catch (err) {
      replace(message, notice(err.problem?.errors?.length
        ? err.problem.errors.map((e) => `${e.name || e.parameter || ''}: ${e.reason || e.message || ''}`).join('; ')
        : err.message, 'error'));
      return;
    }
    replace(message);
    rows.clear();
    selected.clear();
    body.replaceChildren();
    for (const job of page.items) {
      const row = new JobRow(job, operator, (r) => {
        if (r.check.checked) selected.add(r.job.id);
        else selected.delete(r.job.id);
        updateSelection();
      });
      rows.set(job.id, row);
      body.append(row.tr);
    }
    updateSelection();
    for (const [action, button] of Object.entries(allButtons)) {
      button.hidden = !page.total || bulkFilterFor(action, filters, queues) === null;
      button.textContent = `${ALL_TEXT[action].ok} ${page.totalExact ? '' : '~'}${num(page.total)} matching`;
    }
    summary.textContent = `${page.totalExact ? '' : '~'}${num(page.total)} matching · showing ${page.items.length}`;
    if (!page.items.length) body.append(h('tr', {}, h('td', { colspan: COLUMNS.length + 1, class: 'muted' }, 'No jobs match these filters.')));
    replace(pager,
      filters.cursor ? h('a', { href: hashFor({ ...filters, cursor: undefined }), class: 'button' }, 'First page') : null,
      filters.cursor ? h('button', { type: 'button', onclick: () => history.back() }, 'Previous') : null,
      page.nextCursor ? h('a', { href: hashFor({ ...filters, cursor: page.nextCursor }), class: 'button', rel: 'next' }, 'Next') : null);
    watchRows(page.items);
    loadedTotal = page.total;
  }

  const stop = live.listen((batch) => {
    const touched = new Set();
    for (const { name, payload } of batch) {
      if (name === 'resync') {
        load();
        return;
      }
      if (name === 'systemStats') {
        countNew();
        continue;
      }
      if (name !== 'jobUpdate' && name !== 'jobProgress') continue;
      const row = rows.get(payload.jobId);
      if (row && row.apply(name, payload)) touched.add(row);
    }
    for (const row of touched) row.render();
  });

  await load();
  return () => {
    stop();
    releases.forEach((release) => release());
  };
}
