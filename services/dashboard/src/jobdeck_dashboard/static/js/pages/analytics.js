// Analytics: shown once the API serves /api/v1/jobs/analytics/; until then the page says it is unavailable.
import { h } from '../dom.js';
import { available, unavailable } from '../features.js';

const PREFIXES = ['/api/v1/jobs/analytics/'];

export async function mount(root) {
  root.append(h('h1', {}, 'Analytics'));
  if (!(await available(PREFIXES))) root.append(unavailable('Analytics', PREFIXES));
}
