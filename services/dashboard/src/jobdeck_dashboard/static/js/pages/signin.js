// Sign in by pasting a JWT (kept in localStorage "token", like the seed's client).
import { h, notice } from '../dom.js';
import { session } from '../session.js';

export function mount(root) {
  const input = h('textarea', {
    id: 'token', rows: 5, required: true, autocomplete: 'off', spellcheck: 'false',
    placeholder: 'eyJhbGciOi…',
  });
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', {
    class: 'card signin',
    onsubmit: (event) => {
      event.preventDefault();
      if (!session.signIn(input.value)) {
        status.replaceChildren(notice('That is not a JWT (three dot-separated parts).', 'error'));
      }
    },
  },
  h('h1', {}, 'Sign in to jobdeck'),
  session.reason ? notice(session.reason, 'error') : null,
  h('label', { for: 'token' }, 'Paste an access token'),
  input,
  h('p', { class: 'muted' },
    'Operators get tokens from their admin: ',
    h('code', {}, 'jobdeck token --sub alice --role operator --queues emails'),
    '. ', h('code', {}, 'make run'), ' prints a link that signs the demo admin in.'),
  status,
  h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  root.append(form);
  input.focus();
}
