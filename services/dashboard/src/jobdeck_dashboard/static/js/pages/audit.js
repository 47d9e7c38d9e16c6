// Audit log (admin): who did what, newest first, filtered, paged by cursor.
import { api } from '../api.js';
import { h, notice, replace, when } from '../dom.js';

export async function mount(root, route) {
  const params = route.params;
  const input = (name, label) => h('label', { class: 'field' }, h('span', {}, label),
    h('input', { name, value: params.get(name) || '' }));
  const form = h('form', {
    class: 'filters card', role: 'search', 'aria-label': 'Audit filters',
    onsubmit: (event) => {
      event.preventDefault();
      const next = new URLSearchParams();
      for (const el of form.querySelectorAll('input')) if (el.value.trim()) next.set(el.name, el.value.trim());
      location.hash = `#/audit${next.toString() ? `?${next}` : ''}`;
    },
  }, input('actor', 'Actor'), input('action', 'Action'), input('outcome', 'Outcome'),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'),
    h('a', { href: '#/audit', class: 'button' }, 'Reset')));
  const body = h('tbody');
  const message = h('div', { 'aria-live': 'polite' });
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  root.append(h('h1', {}, 'Audit log'), form, message,
    h('div', { class: 'scroll' }, h('table', { class: 'grid audit' },
      h('thead', {}, h('tr', {}, ['at', 'actor', 'action', 'targets', 'outcome', 'detail'].map((c) => h('th', { scope: 'col' }, c)))),
      body)), more);

  let cursor = null;
  async function load() {
    const query = { limit: 50, cursor };
    for (const key of ['actor', 'action', 'outcome']) if (params.get(key)) query[key] = params.get(key);
    try {
      const page = await api('/audit', { query });
      body.append(...page.items.map((e) => h('tr', {},
        h('td', { 'data-label': 'at' }, when(e.at)),
        h('td', { 'data-label': 'actor' }, `${e.actor} (${e.roles.join(', ')})`),
        h('td', { 'data-label': 'action' }, e.action),
        h('td', { 'data-label': 'targets' }, e.targets.slice(0, 5).map(String).join(', ') + (e.targets.length > 5 ? ` … +${e.targets.length - 5}` : '')),
        h('td', { 'data-label': 'outcome' }, e.outcome),
        h('td', { 'data-label': 'detail' }, e.detail ? h('code', {}, JSON.stringify(e.detail)) : ''))));
      if (!body.childElementCount) body.append(h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No entries.')));
      cursor = page.nextCursor;
      more.hidden = !cursor;
    } catch (err) {
      replace(message, notice(err.message, 'error'));
    }
  }
  more.addEventListener('click', load);
  await load();
}
