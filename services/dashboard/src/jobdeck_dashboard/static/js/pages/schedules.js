// Schedules and templates: the list with next runs and last status; create / edit with a
// live cron check (description and next runs in the chosen zone); enable / disable, run
// now, run history; job templates.
import { api, apiPaths } from '../api.js';
import { ask, tell } from '../dialog.js';
import { badge, duration, h, notice, num, replace, when } from '../dom.js';
import { available, unavailable } from '../features.js';
import { session } from '../session.js';

const PREFIXES = ['/api/v1/jobs/schedules'];
const OVERLAP = ['skip', 'allow', 'queue_one'];
const CATCH_UP = ['once', 'skip', 'all'];

function zones() {
  try {
    return Intl.supportedValuesOf('timeZone');
  } catch {
    return ['UTC'];
  }
}

function localTime(run) {
  return run.local.replace('T', ' ').replace(/(\.\d+)?([+-]\d\d:\d\d|Z)$/, ' ($2)');
}

/** The create / edit form; `schedule` null creates. Resolves when saved or abandoned. */
function scheduleForm(schedule, templates, onSaved, onClose) {
  const field = (label, input, hint) => h('label', { class: 'field' }, h('span', {}, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
  const name = h('input', { name: 'name', required: true, value: schedule?.name || '' });
  const template = h('select', { name: 'templateId', required: true },
    templates.map((t) => h('option', { value: t.id, selected: schedule?.templateId === t.id }, `${t.name} (${t.queue} / ${t.jobName})`)));
  const cron = h('input', { name: 'cronExpression', required: true, value: schedule?.cronExpression || '0 2 * * *', spellcheck: 'false', autocomplete: 'off' });
  const zoneList = h('datalist', { id: 'zones' }, zones().map((z) => h('option', { value: z })));
  const zone = h('input', { name: 'timezone', list: 'zones', value: schedule?.timezone || Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC' });
  const enabled = h('input', { type: 'checkbox', name: 'isEnabled', checked: schedule ? schedule.isEnabled : true });
  const overlap = h('select', { name: 'overlapPolicy' }, OVERLAP.map((p) => h('option', { value: p, selected: (schedule?.overlapPolicy || 'skip') === p }, p)));
  const catchUp = h('select', { name: 'catchUpPolicy' }, CATCH_UP.map((p) => h('option', { value: p, selected: (schedule?.catchUpPolicy || 'once') === p }, p)));
  const preview = h('div', { class: 'preview', 'aria-live': 'polite', id: 'cron-preview' });
  const message = h('div', { 'aria-live': 'polite' });

  let timer = null;
  let asked = 0;
  async function check() {
    const mine = ++asked;
    try {
      const p = await api('/jobs/schedules/preview', { query: { cronExpression: cron.value, timezone: zone.value || 'UTC', count: 5 } });
      if (mine !== asked) return;
      cron.setCustomValidity('');
      replace(preview, h('p', {}, h('strong', {}, p.description)),
        h('ol', { class: 'runs' }, p.nextRuns.map((r) => h('li', {}, localTime(r)))));
    } catch (err) {
      if (mine !== asked) return;
      replace(preview, notice(err.message, 'error'));
    }
  }
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(check, 300);
  };
  cron.addEventListener('input', later);
  zone.addEventListener('input', later);
  check();

  const form = h('form', {
    class: 'card schedule-form',
    'aria-label': schedule ? `Edit ${schedule.name}` : 'New schedule',
    onsubmit: async (event) => {
      event.preventDefault();
      const body = {
        name: name.value.trim(), templateId: template.value, cronExpression: cron.value.trim(),
        timezone: zone.value.trim() || 'UTC', isEnabled: enabled.checked,
        overlapPolicy: overlap.value, catchUpPolicy: catchUp.value,
      };
      try {
        const saved = schedule
          ? await api(`/jobs/schedules/${encodeURIComponent(schedule.id)}`, { method: 'PUT', body })
          : await api('/jobs/schedules', { method: 'POST', body });
        onSaved(saved);
      } catch (err) {
        replace(message, notice(err.message, 'error'));
      }
    },
  },
  h('h2', {}, schedule ? `Edit ${schedule.name}` : 'New schedule'),
  h('div', { class: 'filters' },
    field('Name', name), field('Template', template), field('Cron', cron, '5 fields, 6 with seconds first, or @hourly / @daily …'),
    field('Time zone', zone), zoneList, field('Overlap', overlap), field('Catch-up', catchUp),
    h('label', { class: 'check' }, enabled, 'enabled')),
  h('h3', {}, 'Next runs'), preview, message,
  h('div', { class: 'buttons' },
    h('button', { type: 'submit', class: 'primary' }, schedule ? 'Save' : 'Create schedule'),
    h('button', { type: 'button', onclick: onClose }, 'Close')));
  return form;
}

function runsTable(runs) {
  return h('div', { class: 'scroll' }, h('table', { class: 'grid compact runs-table' },
    h('thead', {}, h('tr', {}, ['scheduled', 'trigger', 'outcome', 'lag', 'job', 'status', 'reason'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, runs.length ? runs.map((r) => h('tr', {},
      h('td', { 'data-label': 'scheduled' }, when(r.scheduledAt), r.slotCount > 1 ? ` (+${r.slotCount - 1} slots)` : ''),
      h('td', { 'data-label': 'trigger' }, r.trigger),
      h('td', { 'data-label': 'outcome' }, r.outcome),
      h('td', { 'data-label': 'lag' }, duration(r.lagMs)),
      h('td', { 'data-label': 'job' }, r.jobId ? h('a', { href: `#/job/${encodeURIComponent(r.jobId)}` }, r.jobId) : '–'),
      h('td', { 'data-label': 'status' }, r.jobStatus ? badge(r.jobStatus) : '–'),
      h('td', { 'data-label': 'reason' }, r.reason || ''))) : h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No runs yet.')))));
}

function templatesSection(templates, reload, message) {
  const admin = session.can('admin');
  const input = (name, attrs = {}) => h('input', { name, ...attrs });
  const form = admin ? h('form', {
    class: 'filters', 'aria-label': 'New template',
    onsubmit: async (event) => {
      event.preventDefault();
      const get = (n) => form.querySelector(`[name=${n}]`).value.trim();
      let data = null;
      try {
        data = get('data') ? JSON.parse(get('data')) : null;
      } catch {
        replace(message, notice('Template data must be JSON.', 'error'));
        return;
      }
      try {
        await api('/jobs/templates', { method: 'POST', body: { name: get('name'), queue: get('queue'), jobName: get('jobName'), data, priority: Number(get('priority') || 0) } });
        replace(message);
        reload();
      } catch (err) {
        replace(message, notice(err.message, 'error'));
      }
    },
  },
  h('label', { class: 'field' }, h('span', {}, 'Name'), input('name', { required: true })),
  h('label', { class: 'field' }, h('span', {}, 'Queue'), input('queue', { required: true })),
  h('label', { class: 'field' }, h('span', {}, 'Task'), input('jobName', { required: true })),
  h('label', { class: 'field' }, h('span', {}, 'Data (JSON)'), input('data', { placeholder: '{"path": "prices.csv"}' })),
  h('label', { class: 'field' }, h('span', {}, 'Priority'), input('priority', { type: 'number', min: 0, max: 100, value: 0 })),
  h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Add template'))) : null;
  return h('section', { class: 'card' }, h('h2', {}, 'Templates'),
    h('div', { class: 'scroll' }, h('table', { class: 'grid compact templates' },
      h('thead', {}, h('tr', {}, ['name', 'queue', 'task', 'priority', 'attempts', 'schedules'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, templates.length ? templates.map((t) => h('tr', {},
        h('td', { 'data-label': 'name' }, t.name), h('td', { 'data-label': 'queue' }, t.queue),
        h('td', { 'data-label': 'task' }, t.jobName), h('td', { 'data-label': 'priority' }, String(t.priority)),
        h('td', { 'data-label': 'attempts' }, String(t.maxAttempts)), h('td', { 'data-label': 'schedules' }, num(t.schedules))))
        : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No templates yet.'))))),
    form);
}

export async function mount(root) {
  root.append(h('h1', {}, 'Schedules'));
  if (!(await available(PREFIXES))) {
    root.append(unavailable('Schedules', PREFIXES));
    return;
  }
  const canPreview = (await apiPaths()).has('/api/v1/jobs/schedules/preview');
  const operator = session.can('operator');
  const admin = session.can('admin');
  const message = h('div', { 'aria-live': 'polite' });
  const editor = h('div');
  const list = h('div');
  const history = h('div');
  const templatesBox = h('div');
  // Enabled once the templates are known: a click before that would find none.
  const newButton = admin ? h('button', { type: 'button', class: 'primary', disabled: true, onclick: () => edit(null) }, 'New schedule') : null;
  root.append(message, h('div', { class: 'toolbar' }, newButton), editor, list, history, templatesBox);

  let templates = [];

  function edit(schedule) {
    if (!templates.length) {
      replace(message, notice('Add a template first: a schedule queues the job a template describes.', 'error'));
      return;
    }
    if (!canPreview) replace(message, notice('This API cannot preview cron expressions; the form still validates on save.'));
    replace(editor, scheduleForm(schedule, templates, (saved) => {
      replace(editor);
      replace(message, notice(`Saved ${saved.name}: ${saved.cronDescription}.`));
      load();
    }, () => replace(editor)));
    editor.querySelector('input')?.focus();
  }

  async function act(schedule, action) {
    try {
      if (action === 'run') {
        const result = await api(`/jobs/schedules/${encodeURIComponent(schedule.id)}/run`, { method: 'POST' });
        replace(message, notice(`Queued job ${result.jobId} from ${schedule.name}.`));
      } else if (action === 'delete') {
        if (!(await ask(`Delete ${schedule.name}?`, [h('p', {}, 'With its run history; the jobs it queued stay.')], { okText: 'Delete' }))) return;
        await api(`/jobs/schedules/${encodeURIComponent(schedule.id)}`, { method: 'DELETE' });
      } else {
        await api(`/jobs/schedules/${encodeURIComponent(schedule.id)}/${action}`, { method: 'POST' });
      }
    } catch (err) {
      replace(message, notice(`${action} failed: ${err.message}`, 'error'));
    }
    load();
  }

  async function showRuns(schedule) {
    try {
      const page = await api(`/jobs/schedules/${encodeURIComponent(schedule.id)}/runs`, { query: { limit: 50 } });
      replace(history, h('section', { class: 'card', 'aria-label': `Runs of ${schedule.name}` },
        h('h2', {}, `Runs of ${schedule.name}`),
        h('p', { class: 'muted' }, `fired ${num(schedule.runs.fired)} · skipped ${num(schedule.runs.skipped)} · missed ${num(schedule.runs.missed)} · failed to enqueue ${num(schedule.runs.failedToEnqueue)}`),
        runsTable(page.items),
        h('button', { type: 'button', onclick: () => showRuns(schedule) }, 'Refresh')));
    } catch (err) {
      replace(history, notice(err.message, 'error'));
    }
  }

  async function load() {
    try {
      const [page, tpl] = await Promise.all([
        api('/jobs/schedules', { query: { limit: 200, preview: 3 } }),
        api('/jobs/templates', { query: { limit: 200 } }),
      ]);
      templates = tpl.items;
      if (newButton) newButton.disabled = false;
      replace(templatesBox, templatesSection(templates, load, message));
      replace(list, h('div', { class: 'scroll' }, h('table', { class: 'grid schedules' },
        h('thead', {}, h('tr', {}, ['schedule', 'when', 'next runs', 'last run', 'state', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, page.items.length ? page.items.map((s) => h('tr', { 'data-schedule': s.name },
          h('th', { scope: 'row', 'data-label': 'schedule' }, s.name, h('div', { class: 'muted' }, `${s.templateName || 'no template'} → ${s.queue || '–'} / ${s.jobName || '–'}`)),
          h('td', { 'data-label': 'when' }, h('code', {}, s.cronExpression), h('div', { class: 'muted' }, s.cronDescription)),
          h('td', { 'data-label': 'next runs' }, s.nextRuns.length ? h('ol', { class: 'runs' }, s.nextRuns.map((r) => h('li', {}, localTime(r)))) : '–'),
          h('td', { 'data-label': 'last run' }, s.lastRunAt ? [when(s.lastRunAt), ' ', s.lastStatus ? badge(s.lastStatus) : null] : '–',
            s.lastError ? h('div', { class: 'muted error-line' }, s.lastError) : null),
          h('td', { 'data-label': 'state' }, s.isEnabled ? 'enabled' : h('span', { title: s.disabledReason || '' }, 'disabled'),
            s.consecutiveFailures ? h('div', { class: 'muted' }, `${s.consecutiveFailures} failures in a row`) : null),
          h('td', { class: 'actions' },
            h('button', { type: 'button', class: 'small', onclick: () => showRuns(s), 'aria-label': `Runs of ${s.name}` }, 'Runs'),
            operator ? h('button', { type: 'button', class: 'small', onclick: () => act(s, 'run'), 'aria-label': `Run ${s.name} now` }, 'Run now') : null,
            operator ? h('button', { type: 'button', class: 'small', onclick: () => act(s, s.isEnabled ? 'pause' : 'resume'), 'aria-label': `${s.isEnabled ? 'Disable' : 'Enable'} ${s.name}` }, s.isEnabled ? 'Disable' : 'Enable') : null,
            admin ? h('button', { type: 'button', class: 'small', onclick: () => edit(s), 'aria-label': `Edit ${s.name}` }, 'Edit') : null,
            admin ? h('button', { type: 'button', class: 'small danger', onclick: () => act(s, 'delete'), 'aria-label': `Delete ${s.name}` }, 'Delete') : null)))
          : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No schedules yet.'))))));
    } catch (err) {
      replace(message, notice(err.message, 'error'));
    }
  }
  await load();
}
