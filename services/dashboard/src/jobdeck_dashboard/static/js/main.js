// The page's shell: sign-in from a link, navigation, and mounting one page at a time.
import { h, replace, notice } from './dom.js';
import { live } from './live.js';
import { session } from './session.js';

const PAGES = {
  overview: { title: 'Overview', load: () => import('./pages/overview.js') },
  jobs: { title: 'Jobs', load: () => import('./pages/jobs.js') },
  job: { title: 'Job', load: () => import('./pages/job.js'), hidden: true },
  schedules: { title: 'Schedules', load: () => import('./pages/schedules.js') },
  analytics: { title: 'Analytics', load: () => import('./pages/analytics.js') },
  exports: { title: 'Exports', load: () => import('./pages/exports.js') },
  audit: { title: 'Audit', load: () => import('./pages/audit.js'), role: 'admin' },
  signin: { title: 'Sign in', load: () => import('./pages/signin.js'), hidden: true },
};

const main = document.getElementById('main');
let unmount = null;
let generation = 0;

/** '#/jobs?status=failed' → {name: 'jobs', id: null, params}; '#/job/ID' → {name: 'job', id}. */
export function parseRoute(hash) {
  const [path, query = ''] = hash.replace(/^#\/?/, '').split('?');
  const [name, ...rest] = path.split('/');
  return {
    name: PAGES[name] ? name : 'overview',
    id: rest.length ? decodeURIComponent(rest.join('/')) : null,
    params: new URLSearchParams(query),
  };
}

function takeLinkToken() {
  // `make run` prints http://localhost:3000/#token=JWT: sign in, then drop it from the URL.
  const match = location.hash.match(/^#token=([^&]+)/);
  if (!match) return;
  session.signIn(decodeURIComponent(match[1]));
  history.replaceState(null, '', `${location.pathname}#/`);
}

function renderChrome(route) {
  const nav = document.getElementById('nav');
  replace(nav, session.signedIn ? Object.entries(PAGES)
    .filter(([, page]) => !page.hidden && (!page.role || session.can(page.role)))
    .map(([name, page]) => h('a', {
      href: `#/${name}`,
      'aria-current': (route.name === name || (name === 'jobs' && route.name === 'job')) ? 'page' : null,
    }, page.title)) : []);
  document.getElementById('who').textContent = session.signedIn
    ? `${session.sub} · ${session.role}` : '';
  document.getElementById('signout').hidden = !session.signedIn;
}

async function render() {
  const mine = ++generation;
  let route = parseRoute(location.hash);
  if (!session.signedIn) route = { name: 'signin', id: null, params: new URLSearchParams() };
  else if (route.name === 'signin') route = parseRoute('#/overview');
  renderChrome(route);
  if (unmount) unmount();
  unmount = null;
  const page = PAGES[route.name];
  document.title = `${page.title} · jobdeck`;
  if (page.role && !session.can(page.role)) {
    replace(main, notice(`The ${page.title} page needs the ${page.role} role.`, 'error'));
    return;
  }
  try {
    const module = await page.load();
    if (mine !== generation) return;
    replace(main);
    unmount = (await module.mount(main, route)) || null;
    if (mine !== generation && unmount) unmount();
  } catch (err) {
    if (mine === generation) replace(main, notice(`This page failed to load: ${err.message}`, 'error'));
  }
}

function startLive() {
  if (session.signedIn) live.start();
  else live.stop();
}

live.onStatus((status) => {
  const el = document.getElementById('live');
  el.textContent = status;
  el.dataset.status = status;
});
document.getElementById('signout').addEventListener('click', () => session.signOut());
takeLinkToken();
session.onChange(() => {
  startLive();
  render();
});
window.addEventListener('hashchange', render);
startLive();
render();
