// Exports: shown once the API serves /api/v1/jobs/export; until then the page says it is unavailable.
import { h } from '../dom.js';
import { available, unavailable } from '../features.js';

const PREFIXES = ['/api/v1/jobs/export'];

export async function mount(root) {
  root.append(h('h1', {}, 'Exports'));
  if (!(await available(PREFIXES))) root.append(unavailable('Exports', PREFIXES));
}
