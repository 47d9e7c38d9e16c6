// Pages whose endpoints may be missing from this jobdeck (an older API): they say so
// instead of failing, by reading the API's own OpenAPI document.
import { apiPaths } from './api.js';
import { h, notice } from './dom.js';

/** True when the API documents a path starting with one of `prefixes`. */
export async function available(prefixes) {
  const paths = await apiPaths();
  return [...paths].some((path) => prefixes.some((prefix) => path.startsWith(prefix)));
}

export function unavailable(what, prefixes) {
  return h('section', { class: 'card' },
    notice(`${what} is not available: this jobdeck's API has no ${prefixes.join(' or ')} endpoints.`),
    h('p', { class: 'muted' }, 'The page appears once the API serves them; nothing here is simulated.'));
}
