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
    // A join code from a card ("K7R-M4X": any case, spaces and dashes ignored), or a room id.
    async join(value) {
      const typed = value.trim().replace(/[\s-]+/g, '');
      if (!/^[A-Za-z0-9_]{4,32}$/.test(typed)) return t.badCode;
      try {
        const res = await fetch(`/api/codes/${encodeURIComponent(typed)}`);
        if (res.ok) { location.assign((await res.json()).link); return ''; }
      } catch {
        return t.couldNotJoin;
      }
      const room = typed.toLowerCase();
      if (/^[a-z0-9_]{7,32}$/.test(room)) { location.assign(`/r/${room}`); return ''; }
      return t.noSuchCode;
    },
    async start(prompt) {
      if (!prompt.trim()) return t.noQuestion;
      try {
        const res = await fetch('/api/rooms', {
          method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ prompt }),
        });
        const body = await res.json();
        // Whoever starts a board runs it: open it with the facilitator secret (in the fragment,
        // which is never sent to the server).
        const secret = new URL(body.facilitator_link, location.href).hash;
        if (res.ok) { location.assign(`${body.path}${secret}`); return ''; }
        return body.error || t.couldNotStart;
      } catch {
        return t.couldNotStart;
      }
    },
  });
  import('./plan.js').then((m) => m.renderPlan(main)); // "Plan an event", below the other sections
}

/** The facilitator secret for this room: taken from the link's `#f=…` (then removed from the
 *  address bar, since facilitators share their screens) and kept in local storage. */
function facilitatorSecret(room) {
  const key = `bothy.facilitator.${room}`;
  const found = new URLSearchParams(location.hash.slice(1)).get('f');
  try {
    if (found) localStorage.setItem(key, found);
  } catch { /* storage blocked: the secret lives for this page only */ }
  if (found) history.replaceState(history.state, '', location.pathname + location.search);
  let kept = null;
  try { kept = localStorage.getItem(key); } catch { /* blocked */ }
  return {
    value: kept || found || null,
    forget() { this.value = null; try { localStorage.removeItem(key); } catch { /* blocked */ } },
  };
}

// Kinds whose changes to notes and themes are summarised for others ("2 new notes, 1 change").
const NOTE_KINDS = new Set(['create_note', 'proxy_note', 'edit_note', 'recolour_note', 'move_note', 'delete_note',
  'create_theme', 'rename_theme', 'delete_theme', 'set_note_theme']);

function board(room) {
  const store = new Store(room);
  const secret = facilitatorSecret(room);
  const says = new Map(); // op id → what to announce when it is confirmed
  let heldUpTo = 0;
  const narrow = matchMedia('(max-width: 600px)').matches;
  let socket = null;
  let tools = null; // web/facilitate.js, loaded only for facilitators

  const state = () => {
    const pendingNotes = store.pending.filter((p) => p.op.kind === 'create_note' || p.op.kind === 'proxy_note')
      .map((p) => ({ op_id: p.op_id, text: p.op.text, colour: p.op.colour }));
    return { board: store.board, mine: store.mine, presence: store.presence, pendingNotes, online: socket?.open,
      pendingIds: new Set(), announce: (s) => announcer.say(s), role: store.role,
      dotsUsed: store.dotsUsed(), dotsOn: (id) => store.dotsOn(id), now: () => store.now(),
      // What this person last asked for, until the server confirms it.
      quotable: (note) => store.pending.filter((p) => p.op.kind === 'set_quotable' && p.op.note === note.id)
        .reduce((_, p) => p.op.quotable, note.quotable) };
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
      send({ kind: 'create_note', text, colour, ...freeSpot() }, t.posted);
    },
    vote(note) {
      const left = store.board.state.voting ? store.board.state.voting.budget - store.dotsUsed() - 1 : 0;
      send({ kind: 'vote', note }, t.dotAdded(Math.max(0, left)));
    },
    unvote(note) {
      const left = store.board.state.voting ? store.board.state.voting.budget - store.dotsUsed() + 1 : 0;
      send({ kind: 'unvote', note }, t.dotTaken(Math.max(0, left)));
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
    setQuotable: (note, quotable) => send({ kind: 'set_quotable', note, quotable }, quotable ? t.quoteOn : t.quoteOff),
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

  /** Where a new note goes: the next place in a grid, by how many notes there are. */
  function freeSpot() {
    const n = store.board ? store.board.notes.size + store.pending.length : 0;
    const x = 40 + (n % 8) * 340;
    const y = 100 + (Math.floor(n / 8) % 7) * 260;
    return { x: Math.min(x, BOARD_WIDTH - 300), y: Math.min(y, BOARD_HEIGHT - 200) };
  }

  /** Loads the facilitator's tools the first time the server says this page is a facilitator. */
  async function facilitate() {
    if (tools || !store.facilitator) return;
    tools = 'loading';
    let Facilitation;
    try {
      ({ Facilitation } = await import('./facilitate.js'));
    } catch {
      tools = null; // tried again on the next welcome
      return;
    }
    tools = new Facilitation({
      send,
      proxyNote(text, colour) {
        if (!text.trim()) { view.showNotice(t.empty); return false; }
        if ([...text].length > NOTE_LIMIT) { view.showNotice(t.tooLong(NOTE_LIMIT)); return false; }
        send({ kind: 'proxy_note', text, colour, ...freeSpot() }, t.proxyAdded);
        return true;
      },
      rerender: render,
      excerpt: (note) => view.noteText(note),
      focusKey: (id, key) => view.focusKey(id, key),
    });
    view.setFacilitation(tools);
    render();
  }

  function flushHeld() {
    for (const msg of store.held) {
      if (msg.type === 'sync') store.sync(msg);
      else applyConfirmed(msg, false);
    }
    store.held = [];
    view.setPaused(store.paused, 0);
  }

  function applyConfirmed(msg, own) {
    const focused = document.activeElement?.closest?.('[data-note-id]')?.dataset.noteId;
    if (!store.apply(msg, own)) return;
    if (msg.op.kind === 'move_note' || msg.op.kind === 'set_note_theme') view.previews.delete(msg.op.note);
    if (msg.op.kind === 'timer_ended') view.timerEnded();
    if (own) {
      if (msg.created != null && msg.op.kind === 'create_note') store.mine.add(msg.created);
      return;
    }
    // Changes to the room itself (lock, voting, spotlight, …) are told by the view, in words.
    const moderation = ['hide_note', 'unhide_note', 'remove_note'].includes(msg.op.kind);
    if (!NOTE_KINDS.has(msg.op.kind) && !(moderation && store.facilitator)) return;
    // The note this person is on: told in words of its own (the view says when it is deleted),
    // not also counted in the summary a second later, which would talk over it.
    const onIt = msg.op.note != null && focused === String(msg.op.note);
    const moved = msg.op.kind === 'move_note' || msg.op.kind === 'set_note_theme';
    if (onIt && moved) { announcer.say(t.focusedMoved); return; }
    if (onIt && msg.op.kind === 'delete_note') return;
    const kind = { create_note: 'added', proxy_note: 'added', delete_note: 'removed' }[msg.op.kind] ?? 'changed';
    announcer.remote(kind);
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
        if (store.facilitator) facilitate();
        else if (tools && tools !== 'loading') { tools = null; view.setFacilitation(null); }
        break;
      case 'sync':
        // A whole new board (after a reveal, a hidden note, voting opening or closing).
        if (store.paused) {
          if (msg.seq >= heldUpTo) { store.held.push(msg); heldUpTo = msg.seq; }
          view.setPaused(true, store.held.length);
          return;
        }
        store.held = store.held.filter((h) => h.seq > msg.seq);
        store.sync(msg);
        heldUpTo = Math.max(heldUpTo, store.seq);
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
        // A refused new note (the board was locked, say) goes back into an empty composer.
        if (p && p.op.kind === 'create_note') view.restoreDraft(p.op.text);
        view.showNotice(msg.message);
        break;
      }
      case 'presence': store.presence = msg.count; break;
      case 'read_only': store.readOnly = true; view.setReadOnly(true); break;
      default: return; // pong, error: nothing to show
    }
    render();
  }

  /** The facilitator link was replaced: forget it and take part as a participant, with the
   *  whole board again (a participant's board differs from a facilitator's). */
  function dropSecret() {
    secret.forget();
    store.seq = null;
    view.showNotice(t.badFacilitatorLink);
  }

  socket = new RoomSocket(room, {
    join: () => ({ type: 'join', version: 1, token: identityToken(), last_seq: store.seq, name: settings.name || null,
      ...(secret.value ? { facilitator: secret.value } : {}) }),
    onMessage,
    onStatus(status) {
      const was = connection.dataset.status;
      connection.dataset.status = status;
      connection.textContent = { connected: t.connected, connecting: t.reconnecting, reconnecting: t.reconnecting, offline: t.offline }[status];
      if (status === 'offline' && was !== 'offline') announcer.say(t.offline);
      if (status === 'connected' && was === 'offline') announcer.say(t.connected);
    },
    onClosed(code) {
      if (code === 4003 && secret.value) dropSecret(); // the link was replaced while connected
    },
    onFatal(code) {
      if (code === 4000 && secret.value) { // joined with a link that was replaced
        dropSecret();
        socket.restart();
        return;
      }
      connection.hidden = true;
      renderNoRoom(main);
    },
  });
  connection.textContent = t.reconnecting;
  socket.connect();
}

const match = location.pathname.match(/^\/r\/([a-z0-9_-]{4,32})\/?$/);
// Facilitators' event pages (overview, join cards), loaded only when asked for.
const eventPage = location.pathname.match(/^\/e\/([a-z0-9]{4,32})(\/cards)?\/?$/);
if (match) board(match[1]);
else if (eventPage?.[2]) import('./cards.js').then((m) => m.renderCards(main, eventPage[1]));
else if (eventPage) import('./overview.js').then((m) => m.renderOverview(main, eventPage[1]));
else home();
