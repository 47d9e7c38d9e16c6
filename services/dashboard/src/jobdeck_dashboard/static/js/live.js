// Live events from the gateway (Socket.IO namespace /jobs), shared by every page.
//
// - Rooms are reference-counted: pages ask for a queue or a job and give it back.
// - Events are buffered and handed to the pages in one batch per animation frame, at most
//   one batch every FLUSH_MS: a queue doing a thousand jobs a second costs a few renders a
//   second, not a thousand, and an event after a quiet spell is on screen LINGER_MS and a
//   frame later. The linger keeps a burst in one batch: a stats tick's queueStats and
//   systemStats arrive together but as one browser task per message, and a batch cut after
//   the first would leave the rest of the tick waiting FLUSH_MS for the next one.
// - While the tab is hidden the socket is closed; when it shows again the page reconnects
//   with `auth.lastEventId` and the gateway replays what the rooms missed, without a gap.
import { io } from '/vendor/socket.io.esm.min.js';
import { session } from './session.js';

const FLUSH_MS = 200;
const LINGER_MS = 20;
const EVENTS = [
  'jobAdded', 'jobUpdate', 'jobCompleted', 'jobFailed', 'jobProgress', 'jobLog',
  'queueStats', 'queueStateChange', 'systemStats', 'alert',
  'exportProgress', 'exportCompleted', 'exportFailed',
];
const LATENCY_SAMPLES = 8192;

/** Is stream id `a` ("ms-seq") after `b`? */
export function after(a, b) {
  if (!b) return true;
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am > bm || (am === bm && as > bs);
}

class Live {
  constructor() {
    this.rooms = new Map();
    this.listeners = new Set();
    this.statusListeners = new Set();
    this.pending = [];
    this.timer = null;
    this.lastFlush = -Infinity;
    // What the bench reads: batches handed to the pages, and the ms each took to render.
    this.flushes = 0;
    this.renderMs = new Float64Array(LATENCY_SAMPLES);
    this.lastEventId = null;
    this.namesAtLast = new Set();
    this.info = null;
    this.alerts = new Map();
    // The latest periodic stats, so a page opened between two ticks shows them at once.
    this.system = null;
    this.queueStats = new Map();
    this.status = 'offline';
    // Latencies in ms, as rings: from publish to the frame that shows the event, and from
    // publish to its arrival here (the rest is this page's own batching and rendering).
    this.latency = new Float64Array(LATENCY_SAMPLES);
    this.arrival = new Float64Array(LATENCY_SAMPLES);
    this.latencyCount = 0;
    this.arrivalCount = 0;
    document.addEventListener('visibilitychange', () => this.visibility());
  }

  start() {
    if (this.socket) return;
    this.socket = io('/jobs', {
      transports: ['websocket'],
      auth: (cb) => cb(this.auth()),
      reconnectionDelayMax: 5000,
    });
    for (const name of EVENTS) this.socket.on(name, (payload) => this.receive(name, payload));
    this.socket.on('connected', (info) => this.connected(info));
    this.socket.on('connect_error', (err) => this.refused(err));
    this.socket.on('disconnect', () => {
      this.info = null;
      this.setStatus(document.hidden ? 'paused' : 'reconnecting');
    });
    this.socket.on('tokenExpired', (e) => session.signOut(e?.message || 'Your token expired.'));
    this.socket.on('eventsDropped', () => this.resync('events were dropped'));
    if (document.hidden) this.socket.disconnect();
  }

  stop() {
    this.socket?.disconnect();
    this.socket = null;
    this.info = null;
    this.lastEventId = null;
    this.alerts.clear();
    this.system = null;
    this.queueStats.clear();
    this.setStatus('offline');
  }

  auth() {
    const auth = { token: session.token };
    if (this.lastEventId) auth.lastEventId = this.lastEventId;
    return auth;
  }

  async connected(info) {
    this.info = info;
    this.alerts = new Map(info.activeAlerts.map((a) => [`${a.queue}|${a.kind}`, a]));
    if (!this.lastEventId) this.lastEventId = info.lastEventId;
    await Promise.all([...this.rooms.values()].map((room) => this.join(room)));
    if (info.resumePending) {
      const ack = await this.socket.emitWithAck('resume', { lastEventId: this.lastEventId });
      if (!ack.ok || ack.truncated) this.resync('the event stream was trimmed while away');
    }
    this.setStatus('live');
    this.push('connected', info);
  }

  refused(err) {
    const reason = err?.data?.reason;
    if (reason === 'bad_last_event_id') {
      // The stream was reset (e.g. Redis restarted): start afresh and reload what is shown.
      this.lastEventId = null;
      this.resync('the event stream was reset');
      this.socket.connect();
    } else if (reason) {
      session.signOut(err.message || 'The gateway refused the token.');
    } else {
      this.setStatus('reconnecting');
    }
  }

  visibility() {
    if (!this.socket) return;
    if (document.hidden) {
      this.socket.disconnect();
      this.setStatus('paused');
    } else if (!this.socket.connected) {
      this.socket.connect();
    }
  }

  join(room) {
    return this.socket.emitWithAck(room.subscribe, room.payload);
  }

  /**
   * Ask for a room; returns the function that gives it back. `kind`: 'job' ({jobId, queue}:
   * the job's events and log lines), 'queue' ({queue}: every event of the queue) or 'stats'
   * ({queue}: its queueStats and queueStateChange only, cheap however busy the queue is).
   */
  watch(kind, payload) {
    const key = `${kind}:${kind === 'job' ? payload.jobId : payload.queue}`;
    let room = this.rooms.get(key);
    if (!room) {
      const name = { job: 'Job', queue: 'Queue', stats: 'Stats' }[kind];
      room = { subscribe: `subscribe${name}`, unsubscribe: `unsubscribe${name}`, payload, refs: 0 };
      this.rooms.set(key, room);
      if (this.info) this.join(room);
    }
    room.refs += 1;
    return () => {
      room.refs -= 1;
      if (room.refs > 0) return;
      this.rooms.delete(key);
      if (this.info) {
        const { jobId, queue } = room.payload;
        this.socket.emit(room.unsubscribe, kind === 'job' ? { jobId } : { queue });
      }
    };
  }

  /** Receive every batch of events: fn([{name, payload}, ...]). */
  listen(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  onStatus(fn) {
    this.statusListeners.add(fn);
    fn(this.status);
    return () => this.statusListeners.delete(fn);
  }

  setStatus(status) {
    this.status = status;
    for (const fn of this.statusListeners) fn(status);
  }

  receive(name, payload) {
    if (typeof payload?.ts === 'number') {
      this.arrival[this.arrivalCount % LATENCY_SAMPLES] = Date.now() - payload.ts;
      this.arrivalCount += 1;
    }
    const id = payload?.eventId;
    if (id) {
      // One stream entry can arrive as two events (jobCompleted + jobUpdate) with one id;
      // anything older, or the same pair again, was seen (a resume on a live socket).
      if (id === this.lastEventId) {
        if (this.namesAtLast.has(name)) return;
      } else if (after(id, this.lastEventId)) {
        this.lastEventId = id;
        this.namesAtLast.clear();
      } else {
        return;
      }
      this.namesAtLast.add(name);
    }
    if (name === 'systemStats') this.system = payload;
    else if (name === 'queueStats') this.queueStats.set(payload.queue, payload);
    if (name === 'alert') {
      const key = `${payload.queue}|${payload.kind}`;
      if (payload.state === 'cleared') this.alerts.delete(key);
      else this.alerts.set(key, payload);
    }
    this.push(name, payload);
  }

  resync(reason) {
    this.push('resync', { reason });
  }

  push(name, payload) {
    this.pending.push({ name, payload });
    if (this.timer !== null) return;
    const wait = Math.max(LINGER_MS, this.lastFlush + FLUSH_MS - performance.now());
    this.timer = setTimeout(() => requestAnimationFrame(() => this.flush()), wait);
  }

  flush() {
    this.timer = null;
    this.lastFlush = performance.now();
    const batch = this.pending;
    this.pending = [];
    for (const fn of this.listeners) fn(batch);
    this.renderMs[this.flushes % LATENCY_SAMPLES] = performance.now() - this.lastFlush;
    this.flushes += 1;
    requestAnimationFrame(() => this.measure(batch));
  }

  measure(batch) {
    const now = Date.now();
    for (const { payload } of batch) {
      if (typeof payload?.ts !== 'number') continue;
      this.latency[this.latencyCount % LATENCY_SAMPLES] = now - payload.ts;
      this.latencyCount += 1;
    }
  }

  /** Recorded figures (ms), oldest first (bench/dashboard.py): latencies from publish to
   * `screen` or to `arrival`, or the `render` time of each batch. */
  latencies(which = 'screen') {
    const [ring, count] = {
      arrival: [this.arrival, this.arrivalCount],
      render: [this.renderMs, this.flushes],
    }[which] || [this.latency, this.latencyCount];
    const n = Math.min(count, LATENCY_SAMPLES);
    return Array.from({ length: n }, (_, i) => ring[(count - n + i) % LATENCY_SAMPLES]);
  }
}

export const live = new Live();
window.jobdeckLive = live;
