// The view: owns the DOM and nothing else. User text is only ever set with textContent.

import { strings as t } from './strings.js';
import { BOARD_HEIGHT, BOARD_WIDTH, PALETTE, charLength, outline, talliesVisible } from './model.js';

const SCALE = 0.5; // board units → CSS pixels in the Board view
const NOTE_W = 300; // board units
const NOTE_H = 200;
const STEP = 20; // board units per arrow key press (Shift: ×5)

/** Makes an element: el('button', {class: 'x', text: 'Label', onclick: f}, ...children) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}

const field = (id, label, input, hint) => [
  el('label', { for: id, text: label }),
  hint && el('p', { class: 'hint', id: `${id}-hint`, text: hint }),
  input,
];

export function renderHome(main, { join, start }) {
  document.title = `${t.appName}: ${t.startHeading}`;
  const code = el('input', { id: 'code', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', 'aria-describedby': 'code-hint code-error' });
  const codeError = el('p', { class: 'error', id: 'code-error', role: 'alert' });
  const prompt = el('textarea', { id: 'prompt', rows: '2', 'aria-describedby': 'start-error' });
  const startError = el('p', { class: 'error', id: 'start-error', role: 'alert' });
  main.replaceChildren(
    el('h1', { text: t.appName }),
    el('p', { text: t.homeIntro }),
    el('section', { 'aria-labelledby': 'join-h' },
      el('h2', { id: 'join-h', text: t.joinHeading }),
      el('form', { onsubmit: async (e) => { e.preventDefault(); codeError.textContent = (await join(code.value)) || ''; } },
        ...field('code', t.boardCode, code, t.boardCodeHint), codeError,
        el('button', { type: 'submit', text: t.join }))),
    el('section', { 'aria-labelledby': 'start-h' },
      el('h2', { id: 'start-h', text: t.startHeading }),
      el('form', { onsubmit: async (e) => { e.preventDefault(); startError.textContent = (await start(prompt.value)) || ''; } },
        ...field('prompt', t.question, prompt), startError,
        el('button', { type: 'submit', text: t.start }))),
  );
}

export function renderNoRoom(main) {
  document.title = `${t.noRoomTitle} – ${t.appName}`;
  main.replaceChildren(el('h1', { text: t.noRoomTitle }), el('p', { text: t.noRoomText }),
    el('p', {}, el('a', { href: '/', text: t.goHome })));
}

/** A polite status region; remote changes are summarised, at most one message a second. */
export class Announcer {
  constructor(node) { this.node = node; this.counts = { added: 0, changed: 0, removed: 0 }; this.timer = null; }
  say(text) {
    // Words said before the last ones were shown are kept with them (the latest few), not lost.
    if (this.waiting) {
      if (!this.waiting.includes(text)) this.waiting = [...this.waiting, text].slice(-3);
      return;
    }
    this.waiting = [text];
    // Clear first, and set a moment later, so the same words twice are still read out.
    this.node.textContent = '';
    setTimeout(() => { this.node.textContent = this.waiting.join(' '); this.waiting = null; }, 50);
  }
  remote(kind) {
    this.counts[kind] += 1;
    if (!this.timer) this.timer = setTimeout(() => this.flush(), 1000);
  }
  flush() {
    this.timer = null;
    const { added, changed, removed } = this.counts;
    this.counts = { added: 0, changed: 0, removed: 0 };
    if (added || changed || removed) this.say(t.remote(added, changed, removed));
  }
}

export class BoardView {
  /** @param {HTMLElement} main @param {object} actions callbacks from the controller */
  constructor(main, actions, { limit, draft, name, colour, view }) {
    this.actions = actions;
    this.limit = limit;
    this.viewName = view;
    this.carrying = null; // {id, slot, x, y} while a note is picked up by keyboard
    this.menuFor = null; // note id whose "Move to…" list is open
    this.editing = null; // {id, draft}
    this.renamingTheme = null;
    this.previews = new Map(); // note id → {x, y} shown until the server confirms a move
    this.lastOrder = [];
    this.ownDeletes = new Set(); // notes this person deleted: no "someone else" announcement

    this.roomName = el('p', { class: 'room-name', dir: 'auto', hidden: true });
    this.heading = el('h1', { id: 'prompt-h', tabindex: '-1', text: t.loading });
    this.presence = el('p', { class: 'presence' });
    this.notice = el('p', { class: 'notice', role: 'alert' });
    // The room's state in words; changes are announced once through the announcer.
    this.stateList = el('ul', { class: 'room-state', 'aria-label': t.roomState, hidden: true });
    this.clock = el('span', { class: 'clock', role: 'timer', 'aria-live': 'off' });
    this.timerLock = el('span', { class: 'timer-lock', text: ` ${t.timerLocks}` });
    this.timer = el('p', { class: 'timer', hidden: true }, el('span', { class: 'timer-label', text: `${t.timeLeft}: ` }), this.clock, this.timerLock);
    this.spotText = el('p', { class: 'spotlight-text', dir: 'auto' });
    this.spotlight = el('section', { class: 'spotlight', 'aria-labelledby': 'spotlight-h', hidden: true },
      el('h2', { id: 'spotlight-h', text: t.spotlightHeading }), this.spotText);
    this.facArea = el('div', { class: 'fac-area' });
    this.privacy = el('p', { class: 'privacy' });
    this.lockedHint = el('p', { class: 'hint', id: 'locked-hint', text: t.lockedHint, hidden: true });
    this.text = el('textarea', { id: 'note-text', rows: '3', 'aria-describedby': 'note-text-hint note-count' });
    this.text.value = draft;
    this.count = el('p', { id: 'note-count', class: 'count' });
    this.text.addEventListener('input', () => { this.updateCount(); actions.draft(this.text.value); });
    this.text.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); this.submitNote(); }
    });
    const colours = el('fieldset', { class: 'colours' }, el('legend', { text: t.colour }),
      ...PALETTE.map((c) => el('label', { class: `swatch note-${c}` },
        el('input', { type: 'radio', name: 'colour', value: c, checked: c === colour, onchange: () => actions.colour(c) }),
        t.colours[c])));
    this.colours = colours;
    this.post = el('button', { type: 'submit', text: t.post });
    const composer = el('form', { class: 'composer', onsubmit: (e) => { e.preventDefault(); this.submitNote(); } },
      ...field('note-text', t.yourNote, this.text, t.noteHint), this.count, colours, this.lockedHint, this.post,
      el('p', { class: 'hint quote-hint', id: 'quote-hint', text: t.quoteHint }));

    this.name = el('input', { id: 'name', autocomplete: 'nickname', 'aria-describedby': 'name-hint' });
    this.name.value = name;
    const nameForm = this.nameForm = el('form', { class: 'name', onsubmit: (e) => { e.preventDefault(); actions.saveName(this.name.value.trim()); } },
      ...field('name', t.yourName, this.name, t.nameHint), el('button', { type: 'submit', text: t.saveName }));

    this.themeTitle = el('input', { id: 'theme-title', autocomplete: 'off' });
    const themeForm = this.themeForm = el('form', { class: 'theme-form', onsubmit: (e) => {
      e.preventDefault();
      if (this.themeTitle.value.trim()) { actions.addTheme(this.themeTitle.value.trim()); this.themeTitle.value = ''; }
    } }, ...field('theme-title', t.newTheme, this.themeTitle), el('button', { type: 'submit', text: t.addTheme }));

    const viewSwitch = el('fieldset', { class: 'view-switch' }, el('legend', { text: t.view }),
      ...[['list', t.listView], ['board', t.boardView]].map(([v, label]) => el('label', {},
        el('input', { type: 'radio', name: 'view', value: v, checked: v === view, onchange: () => this.setView(v) }), label)));
    this.pause = el('button', { type: 'button', class: 'pause', 'aria-pressed': 'false', text: t.pause, onclick: () => actions.togglePause() });

    this.notes = el('section', { id: 'notes', class: 'notes', 'aria-labelledby': 'notes-h' });
    this.notesHeading = el('h2', { id: 'notes-h', tabindex: '-1', text: t.notes });

    main.replaceChildren(this.roomName, this.heading, this.presence, this.notice, this.timer, this.stateList, this.spotlight,
      this.facArea,
      el('div', { class: 'tools' }, composer, el('div', { class: 'side' }, this.privacy, nameForm, themeForm, viewSwitch, this.pause)),
      el('div', { class: 'notes-wrap' }, this.notesHeading, this.notes));
    document.addEventListener('keydown', (e) => this.onKey(e));
    this.updateCount();
  }

  updateCount() {
    const n = charLength(this.text.value);
    this.count.textContent = t.count(n, this.limit);
    this.count.classList.toggle('over', n > this.limit);
  }

  submitNote() {
    const text = this.text.value;
    if (this.locked) { this.showNotice(t.lockedHint); return; }
    if (!text.trim()) { this.showNotice(t.empty); return; }
    if (charLength(text) > this.limit) { this.showNotice(t.tooLong(this.limit)); return; }
    const colour = this.colours.querySelector('input:checked')?.value ?? 'yellow';
    this.actions.post(text, colour);
    this.text.value = '';
    this.actions.draft('');
    this.updateCount();
    this.showNotice('');
  }

  showNotice(text) { this.notice.textContent = text; }

  /** Puts a refused note's text back in the composer, unless something else is being written. */
  restoreDraft(text) {
    if (this.text.value.trim()) return;
    this.text.value = text;
    this.actions.draft(text);
    this.updateCount();
  }

  setView(v) {
    this.viewName = v;
    this.carrying = null;
    this.actions.view(v);
  }

  setPaused(paused, waiting) {
    this.pause.setAttribute('aria-pressed', String(paused));
    this.pause.textContent = paused ? t.resume(waiting) : t.pause;
  }

  setReadOnly(readOnly) {
    this.readOnly = readOnly;
    this.post.disabled = readOnly || this.locked;
    if (readOnly) this.showNotice(t.readOnly);
  }

  /** Adds the facilitator's tools (web/facilitate.js): a panel, and controls on each note. */
  setFacilitation(tools) {
    this.tools = tools;
    this.facArea.replaceChildren(...(tools ? [tools.panel] : []));
  }

  /** The server ended the timer (rather than a facilitator stopping it). */
  timerEnded() { this.endedByServer = true; }

  /** What this person may do now: the server decides, this only hides what it would refuse. */
  rights(state) {
    const s = state.board.state;
    const fac = state.role === 'facilitator';
    const change = fac || !s.locked;
    return { fac, change, theme: change && (fac || s.theming !== 'facilitators') };
  }

  /** The room's state as short sentences. */
  stateLines(state) {
    const s = state.board.state;
    const fac = state.role === 'facilitator';
    const lines = [];
    if (s.writing === 'private') lines.push(fac ? t.statePrivateFac : t.statePrivate);
    if (s.locked) lines.push(fac ? t.stateLockedFac : t.stateLocked);
    if (s.voting) {
      const v = s.voting;
      const left = Math.max(0, v.budget - state.dotsUsed);
      lines.push(`${fac ? t.stateVotingFac(v.budget) : t.stateVoting(left, v.budget)} ${v.show_tallies ? t.talliesShown : t.talliesHidden}`);
    }
    if (s.theming === 'facilitators') lines.push(fac ? t.stateThemingFac : t.stateTheming);
    return lines;
  }

  /** Compares the room with how it was at the last render and says what changed, once. */
  announceChanges(state) {
    const { board } = state;
    const s = board.state;
    const fac = state.role === 'facilitator';
    const snap = {
      writing: s.writing, locked: s.locked, voting: Boolean(s.voting), theming: s.theming,
      spotlight: s.spotlight, timer: s.timer?.ends_at ?? null,
      moderation: new Map([...board.notes.values()].map((n) => [n.id, n.moderation])),
    };
    const was = this.snap;
    this.snap = snap;
    const ended = this.endedByServer;
    this.endedByServer = false;
    if (!was) return;
    const say = [];
    if (was.timer != null && snap.timer == null) say.push(ended ? t.timeUp : t.timerStopped);
    if (snap.timer != null && snap.timer !== was.timer) {
      say.push(t.timerStarted(t.duration(Math.max(0, Math.round((snap.timer - state.now()) / 1000)))));
    }
    if (was.writing !== snap.writing) say.push(snap.writing === 'private' ? (fac ? t.statePrivateFac : t.statePrivate) : t.revealed);
    if (was.locked !== snap.locked) say.push(snap.locked ? (fac ? t.stateLockedFac : t.stateLocked) : (fac ? t.unlockedFac : t.unlocked));
    if (was.voting !== snap.voting) {
      const v = s.voting;
      say.push(v ? (fac ? t.stateVotingFac(v.budget) : t.stateVoting(Math.max(0, v.budget - state.dotsUsed), v.budget)) : t.votingClosed);
    }
    if (was.theming !== snap.theming) say.push(snap.theming === 'facilitators' ? t.stateTheming : t.themingOpen);
    if (was.spotlight !== snap.spotlight) {
      const n = snap.spotlight != null && board.notes.get(snap.spotlight);
      say.push(n ? t.spotlightOn(this.noteText(n)) : t.spotlightOff);
    }
    if (!fac) {
      for (const [id, m] of snap.moderation) {
        const before = was.moderation.get(id);
        if (m === before || (before === undefined && !m)) continue;
        say.push(m === 'hidden' ? t.noteHidden : m === 'removed' ? t.noteRemoved : t.noteUnhidden);
      }
    }
    const text = [...new Set(say.filter(Boolean))].join(' ');
    if (text) state.announce(text);
  }

  /** Shows the countdown; ticks once a second while a timer runs. Never announced each second. */
  showTimer(state) {
    const timer = state.board.state.timer;
    clearTimeout(this.ticking);
    this.timer.hidden = !timer;
    if (!timer) { this.countdown = null; return; }
    if (this.countdown?.ends_at !== timer.ends_at) {
      this.countdown = { ends_at: timer.ends_at, over2: timer.ends_at - state.now() > 120_500, said2: false };
    }
    this.timerLock.hidden = timer.on_end !== 'lock';
    const tick = () => {
      const left = Math.max(0, timer.ends_at - state.now());
      const secs = Math.ceil(left / 1000);
      const h = Math.floor(secs / 3600);
      const mm = String(Math.floor((secs % 3600) / 60)).padStart(h ? 2 : 1, '0');
      const ss = String(secs % 60).padStart(2, '0');
      this.clock.textContent = h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
      const c = this.countdown;
      if (c.over2 && !c.said2 && left <= 120_000 && left > 0) { c.said2 = true; state.announce(t.twoMinutes); }
      if (left > 0) this.ticking = setTimeout(tick, (left % 1000) || 1000);
    };
    tick();
  }

  /** Re-renders the notes, keeping focus on the same note and control where possible. */
  render(state) {
    const { board } = state;
    if (!board) return;
    // Never rebuild the note under a finger or mouse mid-drag; catch up when it is dropped.
    if (this.dragging) { this.dirty = true; return; }
    this.heading.textContent = board.prompt;
    this.roomName.textContent = board.name;
    this.roomName.hidden = !board.name;
    document.title = `${board.name ? `${board.name}: ` : ''}${board.prompt} – ${t.appName}`;
    const fac = state.role === 'facilitator';
    this.presence.textContent = fac ? `${t.people(state.presence)} · ${t.youFacilitate}` : t.people(state.presence);
    const rights = this.rights(state);
    this.locked = !rights.change;
    this.post.disabled = this.readOnly || this.locked;
    this.lockedHint.hidden = !this.locked;
    this.themeForm.hidden = !rights.theme;
    const anonymous = board.state.anonymous;
    this.privacy.textContent = anonymous ? t.anonymousStatement : t.namedStatement;
    this.nameForm.hidden = anonymous;
    const lines = this.stateLines(state);
    this.stateList.replaceChildren(...lines.map((l) => el('li', { text: l })));
    this.stateList.hidden = !lines.length;
    const spot = board.state.spotlight != null && board.notes.get(board.state.spotlight);
    this.spotlight.hidden = !spot;
    this.spotText.textContent = spot ? spot.text : '';
    this.showTimer(state);
    this.announceChanges(state);
    this.tools?.update(state);
    const active = document.activeElement;
    const inNotes = this.notes.contains(active);
    const focusNote = inNotes ? active.closest('[data-note-id]') : null;
    const focus = focusNote ? { id: focusNote.dataset.noteId, key: active.dataset.key || 'note' } : null;
    // Controls with an id (theme buttons, rename and edit boxes) get focus back by id,
    // with the text and cursor as they were.
    const activeId = inNotes && active.id ? active.id : null;
    const typed = activeId && typeof active.selectionStart === 'number' ? [active.value, active.selectionStart, active.selectionEnd] : null;
    const wasEditing = this.editing && document.getElementById(`edit-${this.editing.id}`);
    if (wasEditing) this.editing.draft = wasEditing.value;
    const wasRenaming = this.renamingTheme != null && document.getElementById(`rename-${this.renamingTheme}`);
    if (wasRenaming) this.renameDraft = wasRenaming.value;

    const content = this.viewName === 'board' ? this.renderBoard(state) : this.renderList(state);
    this.notes.replaceChildren(...content);
    this.notes.classList.toggle('board-view', this.viewName === 'board');

    const order = [...this.notes.querySelectorAll('[data-note-id]')].map((n) => n.dataset.noteId);
    const again = activeId && document.getElementById(activeId);
    if (again) {
      again.focus();
      if (typed) { again.value = typed[0]; again.setSelectionRange(typed[1], typed[2]); }
    } else if (focus) {
      this.restoreFocus(focus, order, state);
    } else if (inNotes) {
      this.notesHeading.focus(); // what had focus (e.g. a deleted theme's button) is gone
    }
    this.lastOrder = order;
  }

  restoreFocus(focus, order, state) {
    const note = this.notes.querySelector(`[data-note-id="${CSS.escape(focus.id)}"]`);
    if (note) {
      (note.querySelector(`[data-key="${focus.key}"]`) || note).focus({ preventScroll: false });
      return;
    }
    // The note went away (someone else deleted it): go to its neighbour, or the heading.
    const i = this.lastOrder.indexOf(focus.id);
    const next = this.lastOrder.slice(i + 1).concat(this.lastOrder.slice(0, i).reverse()).find((id) => order.includes(id));
    const target = next ? this.notes.querySelector(`[data-note-id="${CSS.escape(next)}"]`) : this.notesHeading;
    target.focus();
    if (!this.ownDeletes.delete(focus.id)) state.announce(t.focusedGone);
  }

  noteText(note) {
    if (!note.text && note.moderation) return note.moderation === 'removed' ? t.removedPlaceholder : t.hiddenPlaceholder;
    const words = note.text.trim().replace(/\s+/g, ' ');
    return charLength(words) > 40 ? `${[...words].slice(0, 40).join('')}…` : words;
  }

  /** Where the carried note would go, as a list of slots in reading order. */
  slots(board) {
    const { themes } = outline(board);
    const id = this.carrying?.id;
    const out = [];
    for (const { theme, notes } of themes) {
      const len = notes.filter((n) => n.id !== id).length;
      for (let p = 0; p <= len; p += 1) out.push({ theme: theme.id, position: p, of: len + 1, title: theme.title });
    }
    out.push({ theme: null, position: 0, of: 1, title: t.notInTheme });
    return out;
  }

  renderList(state) {
    const { board } = state;
    let { themes, loose } = outline(board);
    const carry = this.carrying && board.notes.get(this.carrying.id);
    if (carry) {
      // Show the carried note where it would land.
      const slot = this.slots(board)[this.carrying.slot];
      themes = themes.map((g) => ({ ...g, notes: g.notes.filter((n) => n.id !== carry.id) }));
      loose = loose.filter((n) => n.id !== carry.id);
      if (slot.theme == null) loose = [...loose, carry];
      else { const g = themes.find((x) => x.theme.id === slot.theme); g.notes.splice(slot.position, 0, carry); }
    }
    this.online = state.online;
    const pendingNotes = state.pendingNotes.map((p) => this.pendingItem(p));
    const sections = themes.map(({ theme, notes }) => this.themeSection(theme, notes.map((n) => el('li', {}, this.noteCard(n, state))), state));
    const looseItems = [...loose.map((n) => el('li', {}, this.noteCard(n, state))), ...pendingNotes];
    sections.push(el('section', { class: 'theme loose', 'aria-labelledby': 'theme-none' },
      el('h3', { id: 'theme-none', text: t.notInTheme }),
      looseItems.length ? el('ul', { class: 'note-list' }, ...looseItems)
        : el('p', { class: 'empty', text: board.notes.size ? t.themeEmpty : t.noNotes })));
    return sections;
  }

  themeSection(theme, items, state) {
    const id = `theme-${theme.id}`;
    const may = this.rights(state).theme;
    const renaming = may && this.renamingTheme === theme.id;
    const header = renaming ? this.renameForm(theme) : el('div', { class: 'theme-head' },
      el('h3', { id, dir: 'auto', text: theme.title }),
      may && el('button', { type: 'button', id: `rename-btn-${theme.id}`, text: t.renameTheme, 'aria-describedby': id,
        onclick: () => { this.renamingTheme = theme.id; this.actions.rerender(); document.getElementById(`rename-${theme.id}`)?.focus(); } }),
      may && el('button', { type: 'button', id: `delete-btn-${theme.id}`, text: t.deleteTheme, 'aria-describedby': id, onclick: () => this.actions.deleteTheme(theme.id) }));
    return el('section', { class: 'theme', 'aria-labelledby': renaming ? `rename-${theme.id}` : id }, header,
      items.length ? el('ul', { class: 'note-list' }, ...items) : el('p', { class: 'empty', text: t.themeEmpty }));
  }

  renameForm(theme) {
    const input = el('input', { id: `rename-${theme.id}`, value: this.renameDraft ?? theme.title, autocomplete: 'off' });
    const done = () => { this.renamingTheme = null; this.renameDraft = null; this.actions.rerender(); this.focusId(`rename-btn-${theme.id}`); };
    input.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); done(); } });
    return el('form', { class: 'theme-head', onsubmit: (e) => {
      e.preventDefault();
      const title = input.value.trim();
      this.renamingTheme = null;
      this.renameDraft = null;
      if (title && title !== theme.title) this.actions.renameTheme(theme.id, title); else this.actions.rerender();
      this.focusId(`rename-btn-${theme.id}`);
    } }, el('label', { for: input.id, text: t.themeTitle }), input,
    el('button', { type: 'submit', text: t.save }), el('button', { type: 'button', text: t.cancel, onclick: done }));
  }

  pendingItem(p) {
    return el('li', {}, el('article', { class: `note note-${p.colour} pending` },
      el('p', { class: 'note-text', dir: 'auto', text: p.text }),
      el('p', { class: 'note-meta', text: `${this.online ? t.sending : t.notSent} · ${t.colours[p.colour] ?? ''}` })));
  }

  noteCard(note, state) {
    const mine = state.mine.has(note.id);
    const id = note.id;
    const textId = `note-${id}-text`;
    const metaId = `note-${id}-meta`;
    const carried = this.carrying?.id === id;
    const rights = this.rights(state);
    const { fac } = rights;
    const spot = state.board.state.spotlight === id;
    const card = el('article', {
      class: `note note-${note.colour}${carried ? ' carried' : ''}${state.pendingIds.has(id) ? ' unconfirmed' : ''}${note.moderation ? ' moderated' : ''}${spot ? ' spotlit' : ''}${note.private ? ' private' : ''}`,
      'data-note-id': id, 'data-key': 'note', tabindex: '0',
      'aria-labelledby': textId, 'aria-describedby': metaId,
    });
    // A participant sees a neutral placeholder for a moderated note; a facilitator sees the
    // words (while they exist) and why.
    const withheld = note.moderation && (!fac || !note.text);
    const author = note.proxy ? t.proxy : note.author ?? t.anonymous;
    card.append(withheld
      ? el('p', { class: 'note-text placeholder', id: textId, text: note.moderation === 'removed' ? t.removedPlaceholder : t.hiddenPlaceholder })
      : el('p', { class: 'note-text', id: textId, dir: 'auto', text: note.text }));
    const parts = [];
    if (fac && note.moderation) {
      parts.push(el('span', {}, el('strong', { text: note.moderation === 'removed' ? t.removedBecause : t.hiddenBecause }),
        el('bdi', { text: note.moderation_reason ?? '' })));
    }
    if (!withheld || fac) parts.push(el('bdi', { text: author }), t.colours[note.colour]);
    if (mine) parts.push(t.you);
    if (note.private) parts.push(el('strong', { text: fac ? t.notRevealed : t.privateMine }));
    if (spot) parts.push(el('strong', { text: t.spotlit }));
    if (note.theme != null && this.viewName === 'board') parts.push(state.board.themes.get(note.theme)?.title ?? '');
    card.append(el('p', { class: 'note-meta', id: metaId }, ...parts.flatMap((x, i) => (i ? [' · ', x] : [x]))));
    const votes = !note.moderation && this.votes(note, state);
    if (votes) card.append(votes);
    if (this.editing?.id === id && mine && rights.change && !note.moderation) {
      card.append(this.editForm(note));
      return card;
    }
    const actions = el('div', { class: 'note-actions' });
    const list = this.viewName !== 'board';
    if (!note.moderation || fac) {
      if (rights.theme) {
        actions.append(el('button', { type: 'button', 'data-key': 'move', 'aria-expanded': String(this.menuFor === id), text: t.moveTo,
          onclick: () => { this.menuFor = this.menuFor === id ? null : id; this.actions.rerender(); } }));
      }
      if (list ? rights.theme : rights.change) {
        actions.append(el('button', { type: 'button', 'data-key': 'pick', text: t.pickUp, onclick: () => this.pickUp(id, state) }));
      }
    }
    if ((mine || (fac && note.proxy)) && rights.change && !note.moderation) {
      const colour = el('select', { 'aria-label': t.noteColour, 'data-key': 'colour',
        onchange: (e) => this.actions.recolour(id, e.target.value) },
      ...PALETTE.map((c) => el('option', { value: c, selected: c === note.colour, text: t.colours[c] })));
      actions.append(
        el('button', { type: 'button', 'data-key': 'edit', text: t.edit,
          onclick: () => { this.editing = { id, draft: note.text }; this.actions.rerender(); document.getElementById(`edit-${id}`)?.focus(); } }),
        colour,
        el('button', { type: 'button', 'data-key': 'delete', text: t.delete, onclick: () => { this.ownDeletes.add(String(id)); this.actions.deleteNote(id); } }));
    }
    if (actions.childElementCount) card.append(actions);
    // Consent to be quoted: only the author says so (the server checks again).
    if (mine && !note.proxy && !note.moderation) {
      const box = el('input', { type: 'checkbox', 'data-key': 'quote', 'aria-describedby': textId,
        onchange: (e) => this.actions.setQuotable(id, e.target.checked) });
      box.checked = state.quotable ? state.quotable(note) : note.quotable;
      card.append(el('label', { class: 'choice quote' }, box, t.okToQuote));
    }
    if (this.tools) card.append(...this.tools.noteControls(note, state));
    if (this.menuFor === id && rights.theme) card.append(this.moveMenu(note, state));
    card.addEventListener('keydown', (e) => {
      if (e.target === card && (e.key === ' ' || e.key === 'Spacebar') && !this.carrying && (list ? rights.theme : rights.change)) {
        e.preventDefault();
        this.pickUp(id, state);
      }
    });
    if (this.viewName === 'board' && rights.change) this.makeDraggable(card, note, state);
    return card;
  }

  /** Dot voting on one note: this person's dots, the total when shown, Add / Take back. */
  votes(note, state) {
    const voting = state.board.state.voting;
    const tally = note.votes != null && talliesVisible(state.board, state.role === 'facilitator') ? note.votes : null;
    if (!voting) {
      return tally ? el('p', { class: 'note-votes', text: t.tally(tally) }) : null;
    }
    // Facilitators add dots for people without a device (web/facilitate.js), not their own.
    if (state.role === 'facilitator') return el('div', { class: 'note-votes' }, el('p', { class: 'dots', text: t.tally(tally ?? 0) }));
    const mineOn = state.dotsOn(note.id);
    const left = voting.budget - state.dotsUsed;
    const excerpt = this.noteText(note);
    const words = [t.yourDots(mineOn), tally != null && t.tally(tally)].filter(Boolean).join(' · ');
    const box = el('div', { class: 'note-votes' }, el('p', { class: 'dots', text: words }));
    if (this.rights(state).change) {
      box.append(el('div', { class: 'vote-buttons' },
        el('button', { type: 'button', 'data-key': 'vote', 'aria-label': t.dotLabel(t.addDot, excerpt), 'aria-disabled': String(left <= 0),
          text: t.addDot, onclick: () => (left <= 0 ? this.showNotice(t.noDotsLeft) : this.actions.vote(note.id)) }),
        el('button', { type: 'button', 'data-key': 'unvote', 'aria-label': t.dotLabel(t.takeDot, excerpt), 'aria-disabled': String(mineOn <= 0),
          text: t.takeDot, onclick: () => (mineOn <= 0 ? this.showNotice(t.noDotHere) : this.actions.unvote(note.id)) })));
    }
    return box;
  }

  moveMenu(note, state) {
    const close = () => { this.menuFor = null; };
    const choose = (theme) => { close(); this.actions.setTheme(note.id, theme, null); };
    const items = [...state.board.themes.values()].map((th) =>
      el('li', {}, el('button', { type: 'button', 'data-key': `to-${th.id}`, dir: 'auto', text: th.title, onclick: () => choose(th.id) })));
    items.push(el('li', {}, el('button', { type: 'button', 'data-key': 'to-none', text: t.noTheme, onclick: () => choose(null) })));
    items.push(el('li', {}, el('button', { type: 'button', 'data-key': 'menu-cancel', text: t.cancel,
      onclick: () => { close(); this.actions.rerender(); this.focusKey(note.id, 'move'); } })));
    const list = el('ul', { class: 'move-menu', 'aria-label': t.moveTo }, ...items);
    list.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.stopPropagation(); close(); this.actions.rerender(); this.focusKey(note.id, 'move'); }
    });
    return list;
  }

  editForm(note) {
    const id = `edit-${note.id}`;
    const input = el('textarea', { id, rows: '3', 'data-key': 'edit-text' });
    input.value = this.editing.draft;
    const cancel = () => { this.editing = null; this.actions.rerender(); this.focusKey(note.id, 'edit'); };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.stopPropagation(); cancel(); }
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); e.target.form.requestSubmit(); }
    });
    return el('form', { class: 'edit', onsubmit: (e) => {
      e.preventDefault();
      const text = input.value;
      if (!text.trim()) { this.showNotice(t.empty); return; }
      if (charLength(text) > this.limit) { this.showNotice(t.tooLong(this.limit)); return; }
      this.editing = null;
      this.actions.edit(note.id, text);
      this.focusKey(note.id, 'edit');
    } }, el('label', { for: id, text: t.editNote }), input,
    el('button', { type: 'submit', 'data-key': 'edit-save', text: t.save }),
    el('button', { type: 'button', 'data-key': 'edit-cancel', text: t.cancel, onclick: cancel }));
  }

  focusId(id) { document.getElementById(id)?.focus(); }

  focusKey(noteId, key) {
    const note = this.notes.querySelector(`[data-note-id="${noteId}"]`);
    (note?.querySelector(`[data-key="${key}"]`) || note)?.focus();
  }

  // ---- Moving by keyboard: pick up, arrows, Enter to drop, Escape to cancel.

  pickUp(id, state) {
    const note = state.board.notes.get(id);
    if (!note) return;
    this.menuFor = null;
    if (this.viewName === 'board') {
      const p = this.previews.get(id) ?? note;
      this.carrying = { id, x: p.x, y: p.y };
    } else {
      this.carrying = { id, slot: 0 };
      const slots = this.slots(state.board);
      const theme = note.theme;
      const pos = theme == null ? -1 : state.board.themes.get(theme).notes.indexOf(id);
      this.carrying.slot = Math.max(0, slots.findIndex((s) => s.theme === theme && (theme == null || s.position === pos)));
    }
    state.announce(t.pickedUp(this.noteText(note)));
    this.actions.rerender();
    this.focusKey(id, 'note');
  }

  onKey(e) {
    const c = this.carrying;
    if (!c) return;
    const state = this.actions.state();
    const note = state.board?.notes.get(c.id);
    if (!note) { this.carrying = null; return; }
    const step = e.shiftKey ? STEP * 5 : STEP;
    let moved = false;
    if (this.viewName === 'board' && c.x != null) {
      const d = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[e.key];
      if (d) {
        c.x = Math.min(BOARD_WIDTH - NOTE_W, Math.max(0, c.x + d[0]));
        c.y = Math.min(BOARD_HEIGHT - NOTE_H, Math.max(0, c.y + d[1]));
        state.announce(t.placeXY(c.x, c.y));
        moved = true;
      }
    } else if (c.slot != null && (e.key === 'ArrowUp' || e.key === 'ArrowDown')) {
      const slots = this.slots(state.board);
      c.slot = Math.min(slots.length - 1, Math.max(0, c.slot + (e.key === 'ArrowDown' ? 1 : -1)));
      const s = slots[c.slot];
      state.announce(s.theme == null ? s.title : t.place(s.title, s.position + 1, s.of));
      moved = true;
    }
    if (moved) { e.preventDefault(); this.actions.rerender(); this.focusKey(c.id, 'note'); return; }
    if (e.key === 'Enter') {
      e.preventDefault();
      this.carrying = null;
      if (c.x != null) {
        this.previews.set(c.id, { x: c.x, y: c.y });
        this.actions.move(c.id, c.x, c.y, t.placeXY(c.x, c.y));
      } else {
        const s = this.slots(state.board)[c.slot];
        const place = s.theme == null ? s.title : t.place(s.title, s.position + 1, s.of);
        this.actions.setTheme(c.id, s.theme, s.theme == null ? null : s.position, place);
      }
      this.focusKey(c.id, 'note');
    } else if (e.key === 'Escape') {
      e.preventDefault();
      this.carrying = null;
      state.announce(t.moveCancelled);
      this.actions.rerender();
      this.focusKey(c.id, 'note');
    } else if (e.key === 'Tab') {
      this.carrying = null;
      this.actions.rerender();
    }
  }

  // ---- The Board view: notes where people put them, themes as labelled clusters.

  renderBoard(state) {
    const { board } = state;
    const { themes, loose } = outline(board);
    const canvas = el('div', { id: 'canvas', class: 'canvas' });
    canvas.style.width = `${BOARD_WIDTH * SCALE}px`;
    canvas.style.height = `${BOARD_HEIGHT * SCALE}px`;
    const pos = (n) => (this.carrying?.id === n.id && this.carrying.x != null ? this.carrying : this.previews.get(n.id) ?? n);
    const themeList = el('ul', { class: 'theme-list', 'aria-label': t.renameTheme });
    const mayTheme = this.rights(state).theme;
    for (const { theme, notes } of themes) {
      if (mayTheme) themeList.append(el('li', {}, this.renamingTheme === theme.id ? this.renameForm(theme) : el('div', { class: 'theme-head' },
        el('span', { id: `theme-${theme.id}`, dir: 'auto', text: theme.title }),
        el('button', { type: 'button', id: `rename-btn-${theme.id}`, text: t.renameTheme, 'aria-describedby': `theme-${theme.id}`,
          onclick: () => { this.renamingTheme = theme.id; this.actions.rerender(); document.getElementById(`rename-${theme.id}`)?.focus(); } }),
        el('button', { type: 'button', id: `delete-btn-${theme.id}`, text: t.deleteTheme, 'aria-describedby': `theme-${theme.id}`, onclick: () => this.actions.deleteTheme(theme.id) }))));
      if (!notes.length) continue;
      const xs = notes.map((n) => pos(n));
      const x0 = Math.min(...xs.map((p) => p.x)) - 20;
      const y0 = Math.min(...xs.map((p) => p.y)) - 60;
      const x1 = Math.max(...xs.map((p) => p.x)) + NOTE_W + 20;
      const y1 = Math.max(...xs.map((p) => p.y)) + NOTE_H + 20;
      const box = el('div', { class: 'cluster', 'aria-hidden': 'true', 'data-theme': theme.id }, el('span', { dir: 'auto', text: theme.title }));
      Object.assign(box.style, { left: `${Math.max(0, x0) * SCALE}px`, top: `${Math.max(0, y0) * SCALE}px`,
        width: `${(x1 - Math.max(0, x0)) * SCALE}px`, height: `${(y1 - Math.max(0, y0)) * SCALE}px` });
      canvas.append(box);
    }
    // Notes in reading order (theme by theme, then the rest), placed where people put them.
    for (const n of [...themes.flatMap((g) => g.notes), ...loose]) {
      const card = this.noteCard(n, state);
      const p = pos(n);
      Object.assign(card.style, { left: `${p.x * SCALE}px`, top: `${p.y * SCALE}px` });
      canvas.append(card);
    }
    this.online = state.online;
    const pending = state.pendingNotes.length
      ? el('ul', { class: 'note-list' }, ...state.pendingNotes.map((p) => this.pendingItem(p))) : null;
    return [themeList.childElementCount ? themeList : null, pending, el('div', { class: 'canvas-wrap' }, canvas)].filter(Boolean);
  }

  /** Drag with mouse, pen or touch: a local preview; the server's confirmation commits it.
   *  Escape or dropping outside the board cancels. */
  makeDraggable(card, note, state) {
    card.addEventListener('pointerdown', (e) => {
      if (e.button !== 0 || e.target.closest('button, select, textarea, input, a, form')) return;
      const start = { x: e.clientX, y: e.clientY };
      const origin = this.previews.get(note.id) ?? { x: note.x, y: note.y };
      let dragging = false;
      let current = origin;
      const wrap = card.closest('.canvas-wrap');
      const finish = (commit, ev) => {
        card.removeEventListener('pointermove', move);
        card.removeEventListener('pointerup', up);
        card.removeEventListener('pointercancel', cancel);
        document.removeEventListener('keydown', esc, true);
        card.classList.remove('dragging');
        this.dragging = false;
        if (!dragging) return;
        const r = wrap.getBoundingClientRect();
        const inside = ev && ev.clientX >= r.left && ev.clientX <= r.right && ev.clientY >= r.top && ev.clientY <= r.bottom;
        if (commit && inside) {
          this.previews.set(note.id, current);
          const target = document.elementsFromPoint(ev.clientX, ev.clientY).find((n) => n.classList?.contains('cluster'));
          const theme = target ? Number(target.dataset.theme) : note.theme;
          this.actions.move(note.id, current.x, current.y, t.placeXY(current.x, current.y));
          if (theme !== note.theme && this.rights(state).theme) this.actions.setTheme(note.id, theme, null, state.board.themes.get(theme)?.title ?? t.notInTheme);
        } else {
          Object.assign(card.style, { left: `${origin.x * SCALE}px`, top: `${origin.y * SCALE}px` });
          state.announce(t.moveCancelled);
        }
        if (this.dirty) { this.dirty = false; this.actions.rerender(); }
      };
      const move = (ev) => {
        const dx = (ev.clientX - start.x) / SCALE;
        const dy = (ev.clientY - start.y) / SCALE;
        if (!dragging && Math.hypot(dx, dy) < 8) return;
        dragging = true;
        this.dragging = true;
        card.classList.add('dragging');
        current = { x: Math.min(BOARD_WIDTH - NOTE_W, Math.max(0, origin.x + dx)), y: Math.min(BOARD_HEIGHT - NOTE_H, Math.max(0, origin.y + dy)) };
        Object.assign(card.style, { left: `${current.x * SCALE}px`, top: `${current.y * SCALE}px` });
      };
      const up = (ev) => finish(true, ev);
      const cancel = () => finish(false);
      const esc = (ev) => { if (ev.key === 'Escape') { ev.preventDefault(); ev.stopPropagation(); finish(false); } };
      card.setPointerCapture(e.pointerId);
      card.addEventListener('pointermove', move);
      card.addEventListener('pointerup', up);
      card.addEventListener('pointercancel', cancel);
      document.addEventListener('keydown', esc, true);
    });
  }
}
