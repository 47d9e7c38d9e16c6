// Building DOM without innerHTML: every value from the API lands as text, never as markup.

/** h('a', {href: '#/x', onclick: fn}, 'text', child) → an element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

export function badge(status) {
  return h('span', { class: `badge s-${status}` }, status);
}

export function progressBar(pct, label) {
  const value = Math.max(0, Math.min(100, Number(pct) || 0));
  const bar = h('div', {
    class: 'progress', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100,
    'aria-valuenow': Math.round(value), 'aria-label': label || 'progress',
  }, h('span', { style: null }));
  setProgress(bar, value);
  return bar;
}

export function setProgress(bar, pct) {
  const value = Math.max(0, Math.min(100, Number(pct) || 0));
  if (bar.dataset.value === String(value)) return;
  bar.dataset.value = String(value);
  bar.firstChild.style.width = `${value}%`;
  bar.setAttribute('aria-valuenow', String(Math.round(value)));
  bar.title = `${Math.round(value)}%`;
}

const NUMBER = new Intl.NumberFormat();
export const num = (n) => (n === null || n === undefined ? '–' : NUMBER.format(n));

export function when(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} m ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} m`;
}

/** A message block for errors and empty states. */
export function notice(text, kind = 'info') {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
