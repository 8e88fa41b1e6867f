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
    /** This person's dots, note id → count, as the server last confirmed them. */
    this.myVotes = new Map();
    /** The sequence number `myVotes` was last replaced at: older confirmations are in it already. */
    this.votesSeq = null;
    /** 'participant' or 'facilitator', from the welcome. */
    this.role = 'participant';
    /** Server clock minus this browser's clock (ms), from the welcome: for timers. */
    this.skew = 0;
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

  get facilitator() { return this.role === 'facilitator'; }

  /** The server's clock now (ms since the epoch), as far as this browser can tell. */
  now() { return Date.now() + this.skew; }

  welcome(msg) {
    this.role = msg.role === 'facilitator' ? 'facilitator' : 'participant';
    if (typeof msg.now === 'number') this.skew = msg.now - Date.now();
    if (msg.board) {
      this.board = fromWire(msg.board, { facilitator: this.facilitator });
      this.held = [];
      this.seq = msg.seq;
    }
    // Without a board, the changes missed since `this.seq` follow as `applied` messages.
    for (const id of msg.mine) this.mine.add(id);
    // `mine_seq`: the board is a moment older than these (the changes since follow).
    this.setVotes(msg.my_votes, msg.mine_seq ?? msg.seq);
    this.presence = msg.presence;
    this.readOnly = msg.read_only;
  }

  /** Replaces the board (after a reveal, a hidden note, voting opening or closing); pending
   *  operations stay. False if it is older than what is shown. */
  sync(msg) {
    if (this.seq != null && msg.seq < this.seq) return false;
    this.board = fromWire(msg.board, { facilitator: this.facilitator });
    this.seq = msg.seq;
    this.mine = new Set(msg.mine);
    this.setVotes(msg.my_votes, msg.seq);
    return true;
  }

  setVotes(pairs, seq) {
    if (!Array.isArray(pairs)) return;
    this.myVotes = new Map(pairs.filter(([, n]) => n > 0));
    this.votesSeq = seq;
  }

  /** Applies one confirmed change in order; false if it was already seen. `own`: this page
   *  asked for it. */
  apply(msg, own = false) {
    if (this.seq != null && msg.seq <= this.seq) return false;
    const { op } = msg;
    applyOp(this.board, op, { created: msg.created, at: msg.at, author: msg.author, facilitator: this.facilitator });
    this.seq = msg.seq;
    const fresh = this.votesSeq == null || msg.seq > this.votesSeq;
    if (own && fresh && (op.kind === 'vote' || op.kind === 'unvote')) {
      const n = (this.myVotes.get(op.note) ?? 0) + (op.kind === 'vote' ? 1 : -1);
      if (n > 0) this.myVotes.set(op.note, n); else this.myVotes.delete(op.note);
    }
    if (op.kind === 'delete_note' || op.kind === 'remove_note') this.myVotes.delete(op.note);
    if (op.kind === 'delete_note') this.mine.delete(op.note);
    return true;
  }

  /** Dots used, counting votes not yet confirmed. */
  dotsUsed() {
    let used = 0;
    for (const n of this.myVotes.values()) used += n;
    for (const p of this.pending) {
      if (p.op.kind === 'vote') used += 1;
      else if (p.op.kind === 'unvote') used -= 1;
    }
    return Math.max(0, used);
  }

  /** This person's dots on one note, counting votes not yet confirmed. */
  dotsOn(note) {
    let n = this.myVotes.get(note) ?? 0;
    for (const p of this.pending) {
      if (p.op.note !== note) continue;
      if (p.op.kind === 'vote') n += 1;
      else if (p.op.kind === 'unvote') n -= 1;
    }
    return Math.max(0, n);
  }
}
