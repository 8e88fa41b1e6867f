// The facilitator overview of an event (`/e/<event>`, the secret in `#f=`): one live card per
// room, a run sheet that changes every room at once (or one room), the links to share, the join
// cards and a way to replace the facilitator link. One facilitator WebSocket per room keeps each
// card live. Live updates only change text that holds no control, so the focus never moves.
// Loaded with a dynamic import, so participants never download it.

import { strings as t } from './strings-events.js';
import { applyOp, fromWire } from './model.js';
import { RoomSocket } from './socket.js';
import { identityToken } from './store.js';
import { el } from './view.js';
import { Synthesis, afterSection } from './synthesis.js';

const FACILITATOR_HEADER = 'X-Bothy-Facilitator';
const CLOSE_BAD_JOIN = 4000;
const CLOSE_LINK_CHANGED = 4003;
const CLOSE_NO_SUCH_ROOM = 4004;
const LATEST = 3; // notes shown on each room's card
const ANSWER_MS = 15_000; // how long a room may take to confirm a change
const LOG_LENGTH = 8; // entries kept in "What happened"

// ---------------------------------------------------------------------------------------------
// Shared with the join cards page

const storageKey = (event) => `bothy.event.${event}`;

/**
 * The event's facilitator secret: from the address (`#f=…`), which is then saved and taken out
 * of the address bar (facilitators share their screens), or else the one saved before.
 */
export function facilitatorSecret(event) {
  const m = location.hash.match(/[#&]f=([^&]+)/);
  if (m) {
    let secret = m[1];
    try { secret = decodeURIComponent(secret); } catch { /* keep it as it is */ }
    saveSecret(event, secret);
    history.replaceState(history.state, '', location.pathname + location.search);
    return secret;
  }
  try {
    const v = localStorage.getItem(storageKey(event));
    if (v == null) return null;
    try { return JSON.parse(v); } catch { return v; }
  } catch {
    return null;
  }
}

let watching = false;
/** A facilitator link pasted into this tab changes only the fragment: load the page again for it. */
export function reloadOnNewLink() {
  if (watching) return;
  watching = true;
  addEventListener('hashchange', () => { if (/[#&]f=/.test(location.hash)) location.reload(); });
}

export function saveSecret(event, secret) {
  try { localStorage.setItem(storageKey(event), JSON.stringify(secret)); } catch { /* storage blocked */ }
}

/** GET /api/events/<event>: `{event}` on success, else `{status}` (0 when the network failed). */
export async function loadEvent(event, secret) {
  try {
    const res = await fetch(`/api/events/${encodeURIComponent(event)}`, {
      headers: { [FACILITATOR_HEADER]: secret }, cache: 'no-store',
    });
    if (!res.ok) return { status: res.status };
    return { event: await res.json() };
  } catch {
    return { status: 0 };
  }
}

/** A page that explains why there is nothing to show, with a way forward. */
export function renderProblem(main, heading, text, retry) {
  document.title = `${heading} – Bothy`;
  const h = el('h1', { tabindex: '-1', text: heading });
  main.replaceChildren(h, el('p', { text }),
    retry && el('p', {}, el('button', { type: 'button', text: t.tryAgain, onclick: retry })),
    el('p', {}, el('a', { href: '/', text: t.goHome })));
}

/** Loads the event for a facilitator page, or shows why it cannot; returns the event or null. */
export async function eventForPage(main, event, secret, again) {
  if (!secret) { renderProblem(main, t.badLinkTitle, t.noSecret); return null; }
  main.replaceChildren(el('p', { text: t.loadingEvent }));
  const { event: ev, status } = await loadEvent(event, secret);
  if (ev) return ev;
  if (status === 403 || status === 404) renderProblem(main, t.badLinkTitle, t.badLink);
  else renderProblem(main, t.loadFailedTitle, t.couldNotLoad, again);
  return null;
}

/** Absolute address of a path on this server. */
export const absolute = (path) => `${location.origin}${path}`;

/** "K7RM4X" → "K7R-M4X": two groups of three, easier to read aloud and copy. */
export const groupCode = (code) => (code.length === 6 ? `${code.slice(0, 3)}-${code.slice(3)}` : code);

/** Copies text; if the browser will not, selects it in `input` so Ctrl+C does it. */
export async function copyText(text, input) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (input) { input.hidden = false; input.focus(); input.select(); }
    return false;
  }
}

function announce(text) {
  const node = document.getElementById('announcer');
  if (!node) return;
  node.textContent = '';
  requestAnimationFrame(() => { node.textContent = text; });
}

let opCounter = 0;
const newOpId = () => `ev-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}-${++opCounter}`;

const mmss = (ms) => {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
};

const listOf = (names) => (typeof Intl.ListFormat === 'function'
  ? new Intl.ListFormat('en', { type: 'conjunction' }).format(names) : names.join(', '));

// ---------------------------------------------------------------------------------------------
// The page

/** Renders the overview of `event` into `main`. */
export async function renderOverview(main, event) {
  const connection = document.getElementById('connection');
  const skip = document.querySelector('.skip');
  reloadOnNewLink();
  let secret = facilitatorSecret(event);
  const ev = await eventForPage(main, event, secret, () => renderOverview(main, event));
  if (!ev) { if (skip) skip.hidden = true; if (connection) connection.hidden = true; return; }

  document.title = `${t.overviewTitle(ev.title)} – Bothy`;
  if (skip) { skip.hidden = false; skip.textContent = t.skipToRooms; skip.setAttribute('href', '#rooms-h'); }
  if (connection) connection.hidden = false;

  /** Each room: what the event says, its live board, its socket and the nodes that show it. */
  const rooms = ev.rooms.map((r) => ({
    ...r, prompt: r.prompt ?? '', board: null, seq: null, skew: 0, presence: 0, facilitators: 0,
    status: 'connecting', gone: false, pending: new Map(), socket: null, nodes: null,
  }));
  let stopped = false;

  // --- What happened (results of run-sheet changes)
  const log = el('ol', { class: 'ev-log' });
  const logEmpty = el('p', { class: 'hint', text: t.nothingYet });
  function addLog(text) {
    logEmpty.hidden = true;
    const time = new Date().toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    log.append(el('li', {}, el('span', { class: 'ev-time', text: `${time} ` }), text));
    while (log.children.length > LOG_LENGTH) log.firstElementChild.remove();
  }

  // --- Sending one change to some rooms, and reporting when they have all answered
  function send(targets, op, done) {
    const batch = { done, targets, ok: [], failed: [], left: targets.length, timer: null };
    for (const room of targets) {
      const opId = newOpId();
      if (room.gone || !room.socket?.send({ type: 'op', op_id: opId, op })) { settle(batch, room, false, t.notConnected); continue; }
      room.pending.set(opId, batch);
    }
    if (batch.left > 0) {
      batch.timer = setTimeout(() => {
        for (const room of targets) {
          for (const [id, b] of room.pending) if (b === batch) { room.pending.delete(id); settle(batch, room, false, t.noAnswer); }
        }
      }, ANSWER_MS);
    }
  }

  function settle(batch, room, ok, why) {
    (ok ? batch.ok : batch.failed).push({ room, why });
    batch.left -= 1;
    if (batch.left > 0) return;
    clearTimeout(batch.timer);
    const total = batch.targets.length;
    const parts = [];
    if (total === 1) {
      parts.push(ok ? t.resultOne(batch.done, room.name) : t.resultFailedOne(room.name, why));
    } else {
      parts.push(t.resultAll(batch.done, batch.ok.length, total));
      for (const f of batch.failed) parts.push(t.resultFailedOne(f.room.name, f.why));
    }
    const text = parts.join(' ');
    addLog(text);
    // Each card shows its own latest result (not a live region: the log above already speaks).
    for (const { room: r } of batch.ok) r.nodes.result.textContent = t.resultOne(batch.done, r.name);
    for (const { room: r, why: w } of batch.failed) r.nodes.result.textContent = t.resultFailedOne(r.name, w);
  }

  function failPending(room, why) {
    const pending = [...room.pending.values()];
    room.pending.clear();
    for (const batch of pending) settle(batch, room, false, why);
  }

  // --- The controls: the same for all rooms and for one room
  function controls(prefix, targets, suffix) {
    const btn = (label, onclick, cls) => el('button', { type: 'button', class: cls, onclick }, label,
      suffix && el('span', { class: 'visually-hidden', text: suffix }));
    // Each number's error shows right under it, and is read out when it appears.
    const errorFor = (input) => document.getElementById(`${input.id}-error`);
    const whole = (input, min, max, message) => {
      const v = Number(input.value.trim());
      const good = input.value.trim() !== '' && Number.isInteger(v) && v >= min && v <= max;
      errorFor(input).textContent = good ? '' : message;
      if (good) { input.removeAttribute('aria-invalid'); return v; }
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      return null;
    };

    const minutes = el('input', {
      id: `${prefix}-minutes`, type: 'number', min: '1', max: '360', step: '1', inputmode: 'numeric', value: '5',
      class: 'ev-number', 'aria-describedby': `${prefix}-minutes-error`,
    });
    const onEnd = (value, label, checked) => el('label', { class: 'ev-choice' },
      el('input', { type: 'radio', name: `${prefix}-on-end`, value, checked }), label);
    const dots = el('input', {
      id: `${prefix}-dots`, type: 'number', min: '1', max: '99', step: '1', inputmode: 'numeric', value: '3',
      class: 'ev-number', 'aria-describedby': `${prefix}-dots-error`,
    });
    const tallies = el('input', { id: `${prefix}-tallies`, type: 'checkbox' });
    const box = el('div', { class: 'ev-controls' });
    box.append(
      el('fieldset', { class: 'ev-group' }, el('legend', { text: t.writingLegend }),
        btn(t.startPrivate, () => send(targets(), { kind: 'set_writing', writing: 'private' }, t.done.private)),
        btn(t.reveal, () => send(targets(), { kind: 'set_writing', writing: 'open' }, t.done.reveal))),
      el('fieldset', { class: 'ev-group' }, el('legend', { text: t.timerLegend }),
        el('label', { for: minutes.id, text: t.minutes }), minutes,
        el('p', { class: 'error', id: `${minutes.id}-error`, role: 'alert' }),
        el('fieldset', { class: 'ev-choices' }, el('legend', { text: t.atZero }),
          onEnd('nothing', t.doNothing, true), onEnd('lock', t.lockBoard, false)),
        btn(t.startTimer, () => {
          const m = whole(minutes, 1, 360, t.badMinutes);
          if (m == null) return;
          const end = box.querySelector(`input[name="${prefix}-on-end"]:checked`)?.value ?? 'nothing';
          send(targets(), { kind: 'start_timer', seconds: m * 60, on_end: end }, t.done.timer(m));
        }),
        btn(t.stopTimer, () => send(targets(), { kind: 'stop_timer' }, t.done.stopTimer))),
      el('fieldset', { class: 'ev-group' }, el('legend', { text: t.lockLegend }),
        btn(t.lock, () => send(targets(), { kind: 'set_locked', locked: true }, t.done.lock)),
        btn(t.unlock, () => send(targets(), { kind: 'set_locked', locked: false }, t.done.unlock))),
      el('fieldset', { class: 'ev-group' }, el('legend', { text: t.votingLegend }),
        el('label', { for: dots.id, text: t.dots }), dots,
        el('p', { class: 'error', id: `${dots.id}-error`, role: 'alert' }),
        el('label', { class: 'ev-choice' }, tallies, t.showTallies),
        btn(t.openVoting, () => {
          const d = whole(dots, 1, 99, t.badDots);
          if (d == null) return;
          send(targets(), { kind: 'open_voting', budget: d, show_tallies: tallies.checked }, t.done.openVoting(d));
        }),
        btn(t.closeVoting, () => send(targets(), { kind: 'close_voting' }, t.done.closeVoting))),
      el('fieldset', { class: 'ev-group' }, el('legend', { text: t.themesLegend }),
        btn(t.themingEveryone, () => send(targets(), { kind: 'set_theming', theming: 'everyone' }, t.done.themingEveryone)),
        btn(t.themingFacilitators, () => send(targets(), { kind: 'set_theming', theming: 'facilitators' }, t.done.themingFacilitators))),
    );
    return box;
  }

  // --- Links: join cards, the facilitator link (hidden by default), changing it
  const fLink = () => absolute(`/e/${ev.event}#f=${encodeURIComponent(secret)}`);
  const linkStatus = el('p', { class: 'ev-status', role: 'status' });
  const fInput = el('input', { id: 'ev-flink', readonly: true, class: 'ev-link-input', 'aria-describedby': 'ev-flink-hint' });
  const fField = el('div', { id: 'ev-flink-field', class: 'ev-flink-field', hidden: true },
    el('label', { for: 'ev-flink', text: t.facilitatorLink }), fInput);
  const showLink = el('button', {
    type: 'button', 'aria-expanded': 'false', 'aria-controls': 'ev-flink-field', text: t.showLink,
    onclick: () => setLinkShown(fField.hidden),
  });
  function setLinkShown(shown) {
    fField.hidden = !shown;
    fInput.value = shown ? fLink() : '';
    showLink.setAttribute('aria-expanded', String(shown));
    showLink.textContent = shown ? t.hideLink : t.showLink;
  }
  const copyF = el('button', {
    type: 'button', text: t.copyFacilitatorLink,
    onclick: async () => {
      const done = await copyText(fLink(), null);
      if (!done) { setLinkShown(true); fInput.focus(); fInput.select(); }
      linkStatus.textContent = done ? t.copied : t.copyByHand;
    },
  });
  const change = el('button', { type: 'button', text: t.changeLink, 'aria-expanded': 'false', 'aria-controls': 'ev-change' });
  const changeYes = el('button', { type: 'button', class: 'ev-danger', text: t.changeYes, 'aria-describedby': 'ev-change-warning' });
  const changeNo = el('button', { type: 'button', text: t.cancel });
  const confirm = el('div', { id: 'ev-change', class: 'ev-confirm', hidden: true },
    el('p', { id: 'ev-change-warning', text: t.changeWarning }), changeYes, changeNo);
  const closeConfirm = () => { confirm.hidden = true; change.setAttribute('aria-expanded', 'false'); };
  change.addEventListener('click', () => {
    confirm.hidden = !confirm.hidden;
    change.setAttribute('aria-expanded', String(!confirm.hidden));
    if (!confirm.hidden) changeYes.focus();
  });
  changeNo.addEventListener('click', () => { closeConfirm(); change.focus(); });
  confirm.addEventListener('keydown', (e) => { if (e.key === 'Escape') { closeConfirm(); change.focus(); } });
  // While the link is being changed the server closes this page's sockets too (the old secret
  // is gone); they join again with the new one once it is here.
  let rotation = null;
  changeYes.addEventListener('click', async () => {
    if (rotation) return;
    let finished;
    rotation = new Promise((resolve) => { finished = resolve; });
    linkStatus.textContent = t.changing;
    try {
      const res = await fetch(`/api/events/${encodeURIComponent(ev.event)}/secret`, {
        method: 'POST', headers: { [FACILITATOR_HEADER]: secret }, cache: 'no-store',
      });
      const body = await res.json().catch(() => ({}));
      if (!res.ok || typeof body.facilitator_secret !== 'string') {
        linkStatus.textContent = typeof body.error === 'string' && body.error ? body.error : t.couldNotChange;
        return;
      }
      secret = body.facilitator_secret;
      saveSecret(ev.event, secret);
      for (const room of rooms) room.nodes.open.setAttribute('href', openHref(room));
      closeConfirm();
      setLinkShown(true);
      linkStatus.textContent = t.changed;
      fInput.focus();
      fInput.select();
    } catch {
      linkStatus.textContent = t.couldNotChange;
    } finally {
      rotation = null;
      finished();
    }
  });

  // --- Room cards
  const openHref = (room) => `/r/${room.room}#f=${encodeURIComponent(secret)}`;
  function card(room) {
    const id = `room-${room.room}`;
    const live = el('div', { class: 'ev-live' });
    const conn = el('p', { class: 'ev-conn', text: t.roomConnecting });
    const prompt = el('p', { class: 'ev-prompt', dir: 'auto' });
    const open = el('a', { class: 'ev-open ev-button-link', href: openHref(room) }, t.openRoom,
      el('span', { class: 'visually-hidden', text: t.openRoomIn(room.name) }));
    const link = absolute(room.link);
    const linkInput = el('input', { id: `${id}-link`, readonly: true, class: 'ev-link-input', value: link });
    const copyStatus = el('span', { class: 'ev-status', role: 'status' });
    const copy = el('button', {
      type: 'button',
      onclick: async () => { copyStatus.textContent = (await copyText(link, linkInput)) ? t.copied : t.copyByHand; },
    }, t.copyLink, el('span', { class: 'visually-hidden', text: t.copyLinkFor(room.name) }));
    const result = el('p', { class: 'ev-result' });
    const details = el('details', { class: 'ev-room-controls' },
      el('summary', { text: t.controlsFor(room.name) }),
      controls(`${id}-c`, () => [room], t.inRoom(room.name)));
    room.nodes = { live, conn, prompt, open, result, timer: null };
    return el('li', {}, el('article', { class: 'ev-room', 'aria-labelledby': `${id}-h` },
      el('h3', { id: `${id}-h`, dir: 'auto', text: room.name }),
      prompt, conn, live,
      el('p', { class: 'ev-links' }, open),
      el('p', { class: 'ev-code' }, `${t.joinCode}: `, el('strong', { text: groupCode(room.code) })),
      el('label', { for: linkInput.id, text: t.participantLink(room.name) }),
      el('div', { class: 'ev-copy' }, linkInput, copy, copyStatus),
      synth.roomNode(room), result, details));
  }

  function renderRoom(room) {
    const { nodes, board } = room;
    nodes.prompt.textContent = room.prompt;
    nodes.conn.hidden = room.status === 'connected' && !room.gone;
    nodes.conn.textContent = room.gone ? t.roomGone : room.status === 'connected' ? '' : room.board ? t.roomOffline : t.roomConnecting;
    if (!board) return;
    const { state } = board;
    const notes = [...board.notes.values()];
    const counted = notes.filter((n) => n.moderation !== 'removed').length;
    // Facilitators (this page among them: it joins every room) are not the people writing.
    const participants = Math.max(0, room.presence - room.facilitators);
    const timer = el('span', { class: 'ev-timer' });
    nodes.timer = timer;
    const latest = notes.sort((a, b) => b.id - a.id).slice(0, LATEST);
    nodes.live.replaceChildren(
      el('p', { class: 'ev-counts' }, el('span', { text: t.noteCount(counted) }), el('span', { text: `${t.people(participants)}${t.notCountingFacilitators}` })),
      el('ul', { class: 'ev-state' },
        el('li', { text: state.writing === 'private' ? t.writingPrivate : t.writingOpen }),
        el('li', { text: state.locked ? t.locked : t.unlocked }),
        el('li', {}, timer),
        el('li', { text: state.voting ? t.votingOpen(state.voting.budget, state.voting.show_tallies) : t.votingClosed }),
        el('li', { text: t.themingState(state.theming) })),
      el('h4', { text: t.latestNotes }),
      latest.length
        ? el('ul', { class: 'ev-notes' }, ...latest.map((n) => el('li', { class: `ev-note note-${n.colour}` },
          n.moderation === 'removed' ? el('em', { text: t.removedNote }) : null,
          n.moderation === 'hidden' ? el('strong', { text: t.hiddenMark }) : null,
          n.private && !n.moderation ? el('strong', { text: t.privateMark }) : null,
          n.moderation !== 'removed' ? el('span', { dir: 'auto', text: n.text }) : null)))
        : el('p', { class: 'hint', text: t.noNotes }),
    );
    tickRoom(room);
    synth.updateRoom(room);
    synth.refreshTexts();
  }

  function tickRoom(room) {
    const node = room.nodes.timer;
    if (!node) return;
    const timer = room.board?.state.timer;
    const text = timer ? t.timerLeft(mmss(timer.ends_at - (Date.now() + room.skew)), timer.on_end === 'lock') : t.noTimer;
    if (node.textContent !== text) node.textContent = text;
  }

  // Re-render changed rooms at most every 100 ms; the timers tick once a second.
  const dirty = new Set();
  let renderTimer = null;
  const changed = (room) => {
    dirty.add(room);
    if (!renderTimer) renderTimer = setTimeout(() => { renderTimer = null; for (const r of dirty) renderRoom(r); dirty.clear(); }, 100);
  };
  const ticker = setInterval(() => { if (stopped) clearInterval(ticker); else for (const r of rooms) tickRoom(r); }, 1000);

  // "Time is up" for rooms whose timer ended, gathered into one polite message.
  let timeUp = [];
  let timeUpTimer = null;
  function timerEnded(room) {
    timeUp.push(room.name);
    if (!timeUpTimer) timeUpTimer = setTimeout(() => { announce(t.timeUp(listOf(timeUp))); timeUp = []; timeUpTimer = null; }, 1500);
  }

  function updateConnection() {
    if (!connection || stopped) return;
    const n = rooms.filter((r) => r.status === 'connected').length;
    connection.dataset.status = n === rooms.length ? 'connected' : 'reconnecting';
    connection.textContent = n === rooms.length ? t.connectedAll : t.connectedSome(n, rooms.length);
  }

  function onMessage(room, msg) {
    switch (msg.type) {
      case 'welcome':
        if (msg.board) { room.board = fromWire(msg.board, { facilitator: true }); room.prompt = room.board.prompt; }
        room.seq = msg.seq;
        room.presence = msg.presence;
        room.facilitators = msg.facilitators ?? 0;
        if (typeof msg.now === 'number') room.skew = msg.now - Date.now();
        break;
      case 'sync':
        room.board = fromWire(msg.board, { facilitator: true });
        room.prompt = room.board.prompt;
        room.seq = msg.seq;
        break;
      case 'applied': {
        const batch = room.pending.get(msg.op_id);
        if (batch) { room.pending.delete(msg.op_id); settle(batch, room, true); }
        if (!room.board || (room.seq != null && msg.seq <= room.seq)) break;
        applyOp(room.board, msg.op, { created: msg.created, at: msg.at, author: msg.author, facilitator: true });
        room.seq = msg.seq;
        if (msg.op.kind === 'timer_ended') timerEnded(room);
        break;
      }
      case 'already_applied': {
        const batch = room.pending.get(msg.op_id);
        if (batch) { room.pending.delete(msg.op_id); settle(batch, room, true); }
        return;
      }
      case 'rejected': {
        const batch = room.pending.get(msg.op_id);
        if (batch) { room.pending.delete(msg.op_id); settle(batch, room, false, msg.message); }
        return;
      }
      case 'presence': room.presence = msg.count; room.facilitators = msg.facilitators ?? 0; break;
      default: return;
    }
    changed(room);
  }

  function stopAll() {
    stopped = true;
    for (const room of rooms) {
      const s = room.socket;
      if (!s) continue;
      s.stopped = true;
      clearTimeout(s.timer);
      const ws = s.ws;
      s.ws = null;
      ws?.close();
    }
  }

  // --- After the event: themes across rooms, downloads, deleting
  const synth = new Synthesis({ ev, rooms, secret: () => secret, log: addLog });
  function eventDeleted() {
    stopAll();
    try { localStorage.removeItem(storageKey(ev.event)); } catch { /* storage blocked */ }
    if (connection) connection.hidden = true;
    if (skip) skip.hidden = true;
    document.title = `${t.deletedTitle} – Bothy`;
    const h = el('h1', { tabindex: '-1', text: t.deletedTitle });
    main.replaceChildren(h, el('p', { dir: 'auto', text: t.deletedText(ev.title) }), el('p', {}, el('a', { href: '/', text: t.goHome })));
    h.focus();
  }

  // --- Build the page
  const heading = el('h1', { tabindex: '-1', dir: 'auto', text: ev.title });
  const roomList = el('ul', { class: 'ev-rooms' }, ...rooms.map(card));
  main.replaceChildren(
    heading,
    el('p', { text: `${t.overviewIntro(rooms.length)} ${ev.anonymous ? t.anonymousEvent : t.namesAllowed}.` }),
    el('section', { class: 'ev-section ev-links-section', 'aria-labelledby': 'ev-links-h' },
      el('h2', { id: 'ev-links-h', text: t.linksHeading }),
      el('p', {}, el('a', { class: 'ev-button-link', href: `/e/${ev.event}/cards`, text: t.joinCards })),
      el('p', { class: 'hint', id: 'ev-flink-hint', text: t.facilitatorLinkHint }),
      el('div', { class: 'ev-buttons' }, copyF, showLink, change),
      fField, confirm, linkStatus),
    el('section', { class: 'ev-section ev-run', 'aria-labelledby': 'ev-run-h' },
      el('h2', { id: 'ev-run-h', text: t.runHeading }),
      el('p', { text: t.runIntro }),
      controls('all', () => rooms, ''),
      el('h3', { id: 'ev-log-h', text: t.whatHappened }),
      el('div', { role: 'log', 'aria-labelledby': 'ev-log-h' }, logEmpty, log)),
    el('section', { class: 'ev-section', 'aria-labelledby': 'rooms-h' },
      el('h2', { id: 'rooms-h', tabindex: '-1', text: t.roomsHeading }),
      roomList),
    synth.section,
    afterSection({ ev, secret: () => secret, deleted: eventDeleted }),
  );
  for (const room of rooms) renderRoom(room);
  synth.load();

  // --- One facilitator connection per room
  for (const room of rooms) {
    room.socket = new RoomSocket(room.room, {
      join: () => {
        room.joinedWith = secret;
        return { type: 'join', version: 1, token: identityToken(), last_seq: null, name: null, facilitator: secret };
      },
      onMessage: (msg) => onMessage(room, msg),
      onStatus(status) {
        room.status = status;
        if (status !== 'connected') failPending(room, t.connectionLost);
        updateConnection();
        changed(room);
      },
      onFatal(code) {
        failPending(room, t.notConnected);
        // The link was replaced (4003), or a join raced with this page replacing it: join again
        // with the secret this page has once the change is done. If someone else replaced it,
        // that join is refused (4000) and the page says the link no longer works.
        if (code === CLOSE_LINK_CHANGED || (code === CLOSE_BAD_JOIN && (rotation || room.joinedWith !== secret))) {
          (rotation ?? Promise.resolve()).then(() => room.socket.restart());
          return;
        }
        if (code === CLOSE_BAD_JOIN) {
          // The secret no longer works (it was replaced elsewhere): nothing here can be run.
          stopAll();
          if (connection) connection.hidden = true;
          if (skip) skip.hidden = true;
          renderProblem(main, t.badLinkTitle, t.badLink);
          return;
        }
        if (code === CLOSE_NO_SUCH_ROOM) { room.gone = true; room.status = 'offline'; }
        updateConnection();
        changed(room);
      },
    });
    room.socket.connect();
  }
  updateConnection();
}
