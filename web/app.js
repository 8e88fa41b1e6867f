// The controller: wires the store (state), the socket (connection) and the view (DOM).

import { strings as t } from './strings.js';
import { BOARD_HEIGHT, BOARD_WIDTH } from './model.js';
import { RoomSocket } from './socket.js';
import { Store, identityToken, settings } from './store.js';
import { Announcer, BoardView, renderHome, renderNoRoom } from './view.js';

const NOTE_LIMIT = 500; // the server's default; the server checks again
const NAME_LIMIT = 40;
const main = document.getElementById('main');
const connection = document.getElementById('connection');
const announcer = new Announcer(document.getElementById('announcer'));
const skip = document.querySelector('.skip');
skip.textContent = t.skipToNotes;

function home() {
  connection.hidden = true;
  skip.hidden = true;
  renderHome(main, {
    join(value) {
      const code = value.trim().toLowerCase().replace(/\s+/g, '');
      if (!/^[a-z0-9_-]{4,32}$/.test(code)) return t.badCode;
      location.assign(`/r/${code}`);
      return '';
    },
    async start(prompt) {
      if (!prompt.trim()) return t.noQuestion;
      try {
        const res = await fetch('/api/rooms', {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt }),
        });
        const body = await res.json();
        if (res.ok) { location.assign(body.path); return ''; }
        return body.error || t.couldNotStart;
      } catch {
        return t.couldNotStart;
      }
    },
  });
}

function board(room) {
  const store = new Store(room);
  const says = new Map(); // op id → what to announce when it is confirmed
  let heldUpTo = 0;
  const narrow = matchMedia('(max-width: 600px)').matches;
  let socket = null;

  const state = () => {
    const pendingNotes = store.pending.filter((p) => p.op.kind === 'create_note')
      .map((p) => ({ op_id: p.op_id, text: p.op.text, colour: p.op.colour }));
    return { board: store.board, mine: store.mine, presence: store.presence, pendingNotes, online: socket?.open,
      pendingIds: new Set(), announce: (s) => announcer.say(s) };
  };
  const render = () => view.render(state());

  function send(op, announcement) {
    const opId = store.add(op);
    if (announcement) says.set(opId, announcement);
    if (!socket.send({ type: 'op', op_id: opId, op }) && op.kind === 'create_note') announcer.say(t.queued);
    render();
    return opId;
  }

  const view = new BoardView(main, {
    state,
    rerender: render,
    draft: (text) => { store.draft = text; },
    colour: (c) => { settings.colour = c; },
    view: (v) => { settings.view = v; render(); },
    post(text, colour) {
      const n = store.board ? store.board.notes.size + store.pending.length : 0;
      const x = 40 + (n % 8) * 340;
      const y = 100 + (Math.floor(n / 8) % 7) * 260;
      send({ kind: 'create_note', text, colour, x: Math.min(x, BOARD_WIDTH - 300), y: Math.min(y, BOARD_HEIGHT - 200) }, t.posted);
    },
    saveName(name) {
      if ([...name].length > NAME_LIMIT) { view.showNotice(`${t.yourName}: ${NAME_LIMIT}`); return; }
      settings.name = name;
      announcer.say(t.nameSaved(name));
      socket.reconnectNow();
    },
    addTheme: (title) => send({ kind: 'create_theme', title }, t.themeAdded(title)),
    renameTheme: (theme, title) => send({ kind: 'rename_theme', theme, title }, t.themeRenamed(title)),
    deleteTheme(theme) {
      const title = store.board.themes.get(theme)?.title ?? '';
      send({ kind: 'delete_theme', theme }, t.themeDeleted(title));
    },
    edit: (note, text) => send({ kind: 'edit_note', note, text }, t.edited),
    recolour: (note, colour) => send({ kind: 'recolour_note', note, colour }, t.recoloured(t.colours[colour])),
    deleteNote: (note) => send({ kind: 'delete_note', note }, t.deleted),
    move(note, x, y, place) {
      const text = view.noteText(store.board.notes.get(note));
      send({ kind: 'move_note', note, x, y }, t.movedTo(text, place));
    },
    setTheme(note, theme, position, place) {
      const text = view.noteText(store.board.notes.get(note));
      const where = place ?? (theme == null ? t.notInTheme : store.board.themes.get(theme)?.title);
      send({ kind: 'set_note_theme', note, theme, position }, t.movedTo(text, where));
    },
    togglePause() {
      store.paused = !store.paused;
      if (!store.paused) { flushHeld(); announcer.say(t.resumed); } else announcer.say(t.paused);
      view.setPaused(store.paused, store.held.length);
      render();
    },
  }, {
    limit: NOTE_LIMIT, draft: store.draft, name: settings.name, colour: settings.colour,
    view: settings.view ?? (narrow ? 'list' : 'board'),
  });

  function flushHeld() {
    for (const msg of store.held) applyConfirmed(msg, false);
    store.held = [];
    view.setPaused(store.paused, 0);
  }

  function applyConfirmed(msg, own) {
    const focused = document.activeElement?.closest?.('[data-note-id]')?.dataset.noteId;
    if (!store.apply(msg)) return;
    if (msg.op.kind === 'move_note' || msg.op.kind === 'set_note_theme') view.previews.delete(msg.op.note);
    if (own) {
      if (msg.created != null && msg.op.kind === 'create_note') store.mine.add(msg.created);
      return;
    }
    const kind = { create_note: 'added', delete_note: 'removed' }[msg.op.kind] ?? 'changed';
    announcer.remote(kind);
    const moved = msg.op.kind === 'move_note' || msg.op.kind === 'set_note_theme';
    if (moved && focused === String(msg.op.note)) announcer.say(t.focusedMoved);
  }

  function onMessage(msg) {
    switch (msg.type) {
      case 'welcome':
        store.welcome(msg);
        heldUpTo = store.seq;
        view.setPaused(store.paused, store.held.length);
        view.setReadOnly(store.readOnly);
        // Resend everything not yet confirmed, with the same ids: the server applies each once.
        for (const p of store.pending) socket.send({ type: 'op', op_id: p.op_id, op: p.op });
        break;
      case 'applied': {
        const own = store.isPending(msg.op_id);
        if (own) {
          store.settle(msg.op_id);
          if (store.held.length) flushHeld();
          applyConfirmed(msg, true);
          if (says.has(msg.op_id)) { announcer.say(says.get(msg.op_id)); says.delete(msg.op_id); }
        } else if (store.paused) {
          if (msg.seq > heldUpTo) { store.held.push(msg); heldUpTo = msg.seq; }
          view.setPaused(true, store.held.length);
          return;
        } else {
          applyConfirmed(msg, false);
        }
        heldUpTo = Math.max(heldUpTo, store.seq);
        break;
      }
      case 'already_applied':
        store.settle(msg.op_id);
        says.delete(msg.op_id);
        break;
      case 'rejected': {
        const p = store.pending.find((x) => x.op_id === msg.op_id);
        store.settle(msg.op_id);
        says.delete(msg.op_id);
        if (p && (p.op.kind === 'move_note' || p.op.kind === 'set_note_theme')) view.previews.delete(p.op.note);
        view.showNotice(msg.message);
        break;
      }
      case 'presence': store.presence = msg.count; break;
      case 'read_only': store.readOnly = true; view.setReadOnly(true); break;
      default: return; // pong, error: nothing to show
    }
    render();
  }

  socket = new RoomSocket(room, {
    join: () => ({ type: 'join', version: 1, token: identityToken(), last_seq: store.seq, name: settings.name || null }),
    onMessage,
    onStatus(status) {
      const was = connection.dataset.status;
      connection.dataset.status = status;
      connection.textContent = { connected: t.connected, connecting: t.reconnecting, reconnecting: t.reconnecting, offline: t.offline }[status];
      if (status === 'offline' && was !== 'offline') announcer.say(t.offline);
      if (status === 'connected' && was === 'offline') announcer.say(t.connected);
    },
    onFatal: () => { connection.hidden = true; renderNoRoom(main); },
  });
  connection.textContent = t.reconnecting;
  socket.connect();
}

const match = location.pathname.match(/^\/r\/([a-z0-9_-]{4,32})\/?$/);
if (match) board(match[1]);
else home();
