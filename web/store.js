// What the browser keeps: the board as confirmed by the server, the operations not yet
// confirmed (saved in local storage, so they survive a reload or a dropped connection), and
// the person's settings. No DOM, no network.

import { applyOp, fromWire } from './model.js';

const saved = (key, fallback) => {
  try { const v = localStorage.getItem(key); return v == null ? fallback : JSON.parse(v); } catch { return fallback; }
};
const save = (key, value) => {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* storage full or blocked */ }
};

/** The browser's random identity token: the same person across reloads and reconnects. */
export function identityToken() {
  let token = saved('bothy.token', null);
  if (typeof token !== 'string' || token.length < 16) {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    token = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    save('bothy.token', token);
  }
  return token;
}

export const settings = {
  get name() { return saved('bothy.name', ''); },
  set name(v) { save('bothy.name', v); },
  get view() { return saved('bothy.view', null); },
  set view(v) { save('bothy.view', v); },
  get colour() { return saved('bothy.colour', 'yellow'); },
  set colour(v) { save('bothy.colour', v); },
};

let counter = 0;
const newOpId = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${++counter}`;

export class Store {
  constructor(room) {
    this.room = room;
    /** @type {import('./model.js').Board|null} */
    this.board = null;
    this.seq = null;
    this.mine = new Set();
    this.presence = 0;
    this.readOnly = false;
    /** Operations sent or waiting to be sent, oldest first: [{op_id, op}] */
    this.pending = saved(`bothy.pending.${room}`, []);
    /** Confirmed changes held back while live updates are paused. */
    this.held = [];
    this.paused = false;
  }

  get draft() { return saved(`bothy.draft.${this.room}`, ''); }
  set draft(v) { save(`bothy.draft.${this.room}`, v); }

  savePending() { save(`bothy.pending.${this.room}`, this.pending); }

  /** Queues an operation; returns its id. */
  add(op) {
    const op_id = newOpId();
    this.pending.push({ op_id, op });
    this.savePending();
    return op_id;
  }

  settle(opId) {
    const before = this.pending.length;
    this.pending = this.pending.filter((p) => p.op_id !== opId);
    if (this.pending.length !== before) this.savePending();
  }

  isPending(opId) { return this.pending.some((p) => p.op_id === opId); }

  welcome(msg) {
    if (msg.board) {
      this.board = fromWire(msg.board);
      this.held = [];
      this.seq = msg.seq;
    }
    // Without a board, the changes missed since `this.seq` follow as `applied` messages.
    for (const id of msg.mine) this.mine.add(id);
    this.presence = msg.presence;
    this.readOnly = msg.read_only;
  }

  /** Applies one confirmed change in order; false if it was already seen. */
  apply(msg) {
    if (this.seq != null && msg.seq <= this.seq) return false;
    applyOp(this.board, msg.op, { created: msg.created, at: msg.at, author: msg.author });
    this.seq = msg.seq;
    return true;
  }
}
