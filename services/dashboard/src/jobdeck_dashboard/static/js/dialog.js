// The one modal dialog: confirmations before commands, and their results after.
import { replace } from './dom.js';

const dialog = document.getElementById('dialog');

/** Show `body` (nodes) with OK / Cancel; resolves true on OK. `okText` null hides Cancel. */
export function ask(title, body, { okText = 'OK', cancel = true } = {}) {
  document.getElementById('dialog-title').textContent = title;
  replace(document.getElementById('dialog-body'), body);
  document.getElementById('dialog-ok').textContent = okText;
  document.getElementById('dialog-cancel').hidden = !cancel;
  dialog.returnValue = '';
  dialog.showModal();
  document.getElementById(cancel ? 'dialog-cancel' : 'dialog-ok').focus();
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}

export const tell = (title, body) => ask(title, body, { okText: 'Close', cancel: false });
