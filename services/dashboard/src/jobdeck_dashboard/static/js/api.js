// The REST API on the page's own origin; errors arrive as RFC 9457 problem JSON.
import { session } from './session.js';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

/** Query string in the API's list style: arrays as `name[]=a&name[]=b`. */
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === null || value === undefined || value === '') continue;
    if (Array.isArray(value)) value.forEach((v) => search.append(`${key}[]`, v));
    else search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

export async function api(path, { method = 'GET', body, query } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(`/api/v1${path}${queryString(query)}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (resp.status === 401) session.signOut(payload?.detail || 'The token was refused.');
  if (!resp.ok) throw new ApiError(resp.status, payload);
  return payload;
}

let documented = null;

/** Which API paths this jobdeck serves (from its OpenAPI document), e.g. to show a page
 * only when its endpoints exist — asked once, without probing (and 404ing) each one. */
export async function apiPaths() {
  if (!documented) {
    documented = fetch('/api/docs/openapi.json')
      .then((resp) => (resp.ok ? resp.json() : { paths: {} }))
      .then((doc) => new Set(Object.keys(doc.paths || {})))
      .catch(() => new Set());
  }
  return documented;
}
