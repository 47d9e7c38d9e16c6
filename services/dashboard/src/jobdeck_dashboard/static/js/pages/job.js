// Job detail: status and attempts, live progress and log tail, error and trace, data and
// result, retry / cancel.
import { api } from '../api.js';
import { ask } from '../dialog.js';
import { badge, duration, h, notice, num, progressBar, replace, setProgress, when } from '../dom.js';
import { live } from '../live.js';
import { session } from '../session.js';

const TAIL = 200;
const FINISHED = new Set(['completed', 'failed', 'cancelled']);

function facts(job) {
  const row = (label, value) => [h('dt', {}, label), h('dd', {}, value ?? '–')];
  return h('dl', { class: 'facts' },
    row('queue', h('a', { href: `#/jobs?queues=${encodeURIComponent(job.queue)}` }, job.queue)),
    row('priority', String(job.priority)),
    row('attempts', `${job.attempts} of ${job.maxAttempts} (${job.attemptsLeft} left)`),
    row('worker', job.worker),
    row('created', when(job.createdAt)),
    job.runAt ? row('run at', when(job.runAt)) : null,
    row('started', when(job.startedAt)),
    row('finished', when(job.finishedAt)),
    row('waited', duration(job.timing?.waitMs)),
    row('duration', duration(job.duration)),
    job.cancelledBy ? row('cancelled by', job.cancelledBy) : null,
    job.templateId ? row('template', job.templateId) : null,
    job.scheduleId ? row('schedule', job.scheduleId) : null);
}

function attemptItem(a) {
  const took = a.startedAt && a.finishedAt ? Date.parse(a.finishedAt) - Date.parse(a.startedAt) : null;
  return h('li', { class: 'attempt' },
    h('strong', {}, `attempt ${a.attempt}`), ' ', a.outcome ? badge(a.outcome) : null,
    h('span', { class: 'muted' },
      a.worker ? ` on ${a.worker}` : '',
      a.startedAt ? ` · ${when(a.startedAt)}` : '',
      took !== null ? ` · ${duration(took)}` : '',
      ` · ${num(a.logLines)} log lines`),
    a.errorType || a.errorMessage ? h('div', { class: 'error-text' }, h('strong', {}, a.errorType || 'Error'), `: ${a.errorMessage || ''}`) : null,
    a.errorTraceback ? h('details', {}, h('summary', {}, 'stack trace'), h('pre', { class: 'code trace', tabindex: 0 }, a.errorTraceback)) : null);
}

function json(value) {
  return h('pre', { class: 'code', tabindex: 0 }, value === null || value === undefined ? '–' : JSON.stringify(value, null, 2));
}

function logLine(line) {
  return h('li', { class: `log ${line.level}` },
    h('time', {}, new Date(line.ts).toLocaleTimeString()), ' ',
    h('span', { class: 'level' }, line.level), ' ',
    h('span', { class: 'attempt' }, `#${line.attempt}`), ' ',
    line.message);
}

export async function mount(root, route) {
  const id = route.id;
  const head = h('div', { class: 'jobhead' });
  const bar = progressBar(0, 'job progress');
  const progressText = h('span', { class: 'muted' });
  const factsBox = h('div');
  const errorBox = h('div');
  const attemptsBox = h('div');
  const logs = h('ol', { class: 'logs', 'aria-live': 'off', tabindex: 0, 'aria-label': 'log lines' });
  const logNote = h('p', { class: 'muted' });
  const dataBox = h('div');
  const message = h('div', { 'aria-live': 'polite' });
  const actions = h('div', { class: 'toolbar' });
  root.append(
    h('p', {}, h('a', { href: '#/jobs' }, '← Jobs')),
    head, message, actions,
    h('section', { class: 'card' }, h('h2', {}, 'Progress'), bar, progressText),
    h('section', { class: 'card' }, h('h2', {}, 'Details'), factsBox),
    errorBox,
    h('section', { class: 'card' }, h('h2', {}, 'Attempts'), attemptsBox),
    h('section', { class: 'card' }, h('h2', {}, 'Log'), logNote, logs),
    dataBox);

  let job = null;
  let queued = null;

  async function command(action) {
    const ok = await ask(`${action === 'retry' ? 'Retry' : 'Cancel'} this job?`,
      [h('p', {}, `${job.jobName} (${job.id})`)], { okText: action === 'retry' ? 'Retry' : 'Cancel job' });
    if (!ok) return;
    try {
      const result = await api(`/jobs/${encodeURIComponent(id)}/${action}`, { method: 'POST' });
      replace(message, notice(`${action}: ${result.outcome}${result.reason ? ` — ${result.reason}` : ''}`));
    } catch (err) {
      replace(message, notice(`${action} failed: ${err.message}`, 'error'));
    }
    refresh();
  }

  function render() {
    replace(head, h('h1', {}, job.jobName, ' ', badge(job.status)), h('p', { class: 'muted id' }, job.id));
    setProgress(bar, job.progress);
    progressText.textContent = `${Math.round(job.progress)}%${job.progressMessage ? ` — ${job.progressMessage}` : ''}`;
    replace(factsBox, facts(job));
    replace(errorBox, job.errorType || job.errorMessage ? h('section', { class: 'card error' },
      h('h2', {}, 'Error'), h('p', {}, h('strong', {}, job.errorType || 'Error'), `: ${job.errorMessage || ''}`),
      job.errorTraceback ? h('pre', { class: 'code trace', tabindex: 0 }, job.errorTraceback) : null) : null);
    replace(attemptsBox, job.attemptHistory.length ? h('ol', { class: 'timeline' }, job.attemptHistory.map(attemptItem))
      : h('p', { class: 'muted' }, 'Not started yet.'));
    replace(dataBox,
      h('section', { class: 'card' }, h('h2', {}, 'Data'), json(job.data)),
      job.result !== undefined && job.result !== null ? h('section', { class: 'card' }, h('h2', {}, 'Result'), json(job.result)) : null);
    replace(actions, session.can('operator') ? [
      FINISHED.has(job.status) && job.status !== 'completed'
        ? h('button', { type: 'button', onclick: () => command('retry') }, 'Retry') : null,
      FINISHED.has(job.status) ? null
        : h('button', { type: 'button', class: 'danger', onclick: () => command('cancel') }, 'Cancel'),
    ] : null);
  }

  async function refresh() {
    try {
      job = await api(`/jobs/${encodeURIComponent(id)}`);
      render();
    } catch (err) {
      replace(message, notice(err.status === 404 ? `No job ${id} (or not one your token may see).` : err.message, 'error'));
    }
  }

  // Lines by (attempt, seq): live lines and the REST tail overlap while both arrive.
  const shown = new Map();
  const lineKey = (line) => line.attempt * 1e9 + line.seq;
  function showLines(lines) {
    let fresh = false;
    for (const line of lines) {
      if (shown.has(lineKey(line))) continue;
      shown.set(lineKey(line), logLine(line));
      fresh = true;
    }
    if (!fresh) return;
    const keys = [...shown.keys()].sort((a, b) => a - b);
    for (const key of keys.slice(0, Math.max(0, keys.length - TAIL * 5))) shown.delete(key);
    const stick = logs.scrollTop + logs.clientHeight >= logs.scrollHeight - 4;
    logs.replaceChildren(...keys.filter((k) => shown.has(k)).map((k) => shown.get(k)));
    if (stick) logs.scrollTop = logs.scrollHeight;
  }

  async function loadLogs() {
    const first = await api(`/jobs/${encodeURIComponent(id)}/logs`, { query: { limit: 1 } });
    const offset = Math.max(0, first.total - TAIL);
    const page = await api(`/jobs/${encodeURIComponent(id)}/logs`, { query: { limit: TAIL, offset } });
    logNote.textContent = first.total > TAIL ? `Last ${TAIL} of ${num(first.total)} lines.` : '';
    showLines(page.items);
  }

  await refresh();
  if (!job) return undefined;
  const release = live.watch('job', { jobId: id, queue: job.queue });
  const stop = live.listen((batch) => {
    const lines = [];
    for (const { name, payload } of batch) {
      if (name === 'resync') {
        refresh();
        loadLogs().catch(() => {});
        continue;
      }
      if (payload?.jobId !== id) continue;
      if (name === 'jobProgress') {
        job.progress = payload.progress;
        job.progressMessage = payload.message;
        setProgress(bar, payload.progress);
        progressText.textContent = `${Math.round(payload.progress)}%${payload.message ? ` — ${payload.message}` : ''}`;
      } else if (name === 'jobLog') {
        lines.push(payload);
      } else if (name === 'jobUpdate') {
        // Status changes are rare: take the whole row again (error, timing, attempts).
        clearTimeout(queued);
        queued = setTimeout(refresh, 100);
      }
    }
    if (lines.length) showLines(lines);
  });
  await loadLogs().catch((err) => replace(logNote, notice(err.message, 'error')));
  return () => {
    stop();
    release();
    clearTimeout(queued);
  };
}
