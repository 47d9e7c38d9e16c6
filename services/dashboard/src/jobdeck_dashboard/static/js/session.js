// Who is signed in: the JWT kept where the seed's client keeps it (localStorage "token"),
// and what its claims allow. The server enforces every rule; the page only hides what a
// role cannot do.

const KEY = 'token';
const RANK = { viewer: 1, operator: 2, admin: 3 };

function decode(token) {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    return JSON.parse(decodeURIComponent(escape(json)));
  } catch {
    return null;
  }
}

class Session {
  constructor() {
    this.listeners = new Set();
    this.load(localStorage.getItem(KEY));
  }

  load(token) {
    const claims = token ? decode(token) : null;
    this.token = claims ? token : null;
    this.claims = claims;
  }

  get signedIn() {
    return Boolean(this.token) && !this.expired;
  }

  get expired() {
    return Boolean(this.claims && this.claims.exp && this.claims.exp * 1000 < Date.now());
  }

  get sub() {
    return this.claims?.sub ?? '';
  }

  /** The highest role in the token's `roles` claim. */
  get role() {
    const roles = [].concat(this.claims?.roles ?? []);
    return roles.reduce((best, r) => ((RANK[r] || 0) > (RANK[best] || 0) ? r : best), 'viewer');
  }

  can(role) {
    return (RANK[this.role] || 0) >= RANK[role];
  }

  /** Queue names the token covers, or null for every queue. */
  get queues() {
    const q = this.claims?.queues;
    if (q === undefined || q === '*' || (Array.isArray(q) && q.includes('*'))) return null;
    return [].concat(q);
  }

  signIn(token) {
    const trimmed = token.trim();
    if (!decode(trimmed)) return false;
    localStorage.setItem(KEY, trimmed);
    this.load(trimmed);
    this.emit();
    return true;
  }

  signOut(reason) {
    localStorage.removeItem(KEY);
    this.load(null);
    this.reason = reason || null;
    this.emit();
  }

  onChange(fn) {
    this.listeners.add(fn);
  }

  emit() {
    for (const fn of this.listeners) fn(this);
  }
}

export const session = new Session();
