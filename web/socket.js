// The connection to the room: join, reconnect with backoff, online/offline. No DOM.
// The socket URL comes from the page's own location.

const CLOSE_NO_SUCH_ROOM = 4004;
const CLOSE_BAD_JOIN = 4000;

export class RoomSocket {
  /**
   * @param {string} room
   * @param {{join: () => object, onMessage: (msg: object) => void,
   *          onStatus: (status: 'connecting'|'connected'|'reconnecting'|'offline') => void,
   *          onFatal: (code: number, reason: string) => void,
   *          onClosed?: (code: number) => void}} hooks  onClosed: any other close, before reconnecting
   */
  constructor(room, hooks) {
    this.room = room;
    this.hooks = hooks;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    addEventListener('offline', () => this.goOffline());
    addEventListener('online', () => this.reconnectNow());
  }

  url() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}/ws/${encodeURIComponent(this.room)}`;
  }

  connect() {
    clearTimeout(this.timer);
    if (this.stopped) return;
    if (!navigator.onLine) { this.hooks.onStatus('offline'); return; }
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener('open', () => ws.send(JSON.stringify(this.hooks.join())));
    // Messages are handled one after another: a welcome whose board comes from a link holds
    // back what follows it until the board is here, so every change applies in order.
    let inbox = Promise.resolve();
    ws.addEventListener('message', (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      inbox = inbox.then(() => this.receive(ws, msg))
        .catch((err) => setTimeout(() => { throw err; })); // reported, and the next still runs
    });
    ws.addEventListener('close', (e) => {
      if (this.ws !== ws) return; // replaced on purpose
      this.ws = null;
      if (e.code === CLOSE_NO_SUCH_ROOM || e.code === CLOSE_BAD_JOIN) {
        this.stopped = true;
        this.hooks.onFatal(e.code, e.reason);
        return;
      }
      // E.g. 4003, the facilitator link was replaced: the page may change what it joins with.
      this.hooks.onClosed?.(e.code);
      if (!navigator.onLine) { this.hooks.onStatus('offline'); return; }
      this.hooks.onStatus('reconnecting');
      // Backoff with jitter: 0.5 s, 1 s, 2 s … up to 10 s.
      const delay = Math.min(10000, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  async receive(ws, msg) {
    if (this.ws !== ws) return; // given up meanwhile
    if (msg.type === 'welcome' && msg.board_url) {
      // The board was too big to put in the welcome: it is fetched, once, from this link.
      try {
        const res = await fetch(msg.board_url, { cache: 'no-store' });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        msg.board = await res.json();
      } catch {
        if (this.ws === ws) ws.close(); // e.g. the connection dropped: join again, for a new link
        return;
      }
      if (this.ws !== ws) return;
    }
    if (msg.type === 'welcome') { this.attempt = 0; this.hooks.onStatus('connected'); }
    this.hooks.onMessage(msg);
  }

  /** Sends if connected; returns whether it went out. */
  send(msg) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  get open() { return this.ws?.readyState === WebSocket.OPEN; }

  goOffline() {
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    clearTimeout(this.timer);
    this.hooks.onStatus('offline');
  }

  /** Joins again after a fatal close, e.g. without a facilitator secret the server refused. */
  restart() {
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  /** Drops the current connection (if any) and joins again at once, e.g. after a name change. */
  reconnectNow() {
    const ws = this.ws;
    this.ws = null;
    ws?.close();
    this.attempt = 0;
    this.hooks.onStatus('reconnecting');
    this.connect();
  }
}
