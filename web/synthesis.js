// The facilitator overview's work after the event (loaded with it, never by participants):
// "Themes across rooms" — a synthesis board whose themes gather notes from every room, each
// note keeping its room, with suggested themes computed on the server — and "After the event":
// the snapshot and report downloads and deleting the event.
//
// Every request carries the facilitator secret in a header, so downloads are fetched and saved
// through a Blob (a plain link cannot send the header). Note text comes from the live boards the
// overview keeps and is only ever set with textContent.

import { strings as t } from './strings-events.js';
import { el } from './view.js';

const FACILITATOR_HEADER = 'X-Bothy-Facilitator';
const EXCERPT = 60; // characters of a note quoted in a button's name or a log entry

const excerpt = (text) => {
  const words = String(text ?? '').trim().replace(/\s+/g, ' ');
  return [...words].length > EXCERPT ? `${[...words].slice(0, EXCERPT).join('')}…` : words;
};

/** Asks the event's API; returns `{ok, status, body}` (`status` 0 when the network failed). */
async function call(event, secret, method, path, payload) {
  const headers = { [FACILITATOR_HEADER]: secret };
  if (payload !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const res = await fetch(`/api/events/${encodeURIComponent(event)}${path}`, {
      method, headers, cache: 'no-store', body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    const body = res.status === 204 ? {} : await res.json().catch(() => ({}));
    return { ok: res.ok, status: res.status, body };
  } catch {
    return { ok: false, status: 0, body: {} };
  }
}

const problem = (answer, fallback) => (typeof answer.body?.error === 'string' && answer.body.error ? answer.body.error : fallback);

/** The file name from a Content-Disposition header, else `fallback`. */
function fileName(disposition, fallback) {
  const star = disposition.match(/filename\*\s*=\s*UTF-8''([^;]+)/i);
  if (star) { try { return decodeURIComponent(star[1]); } catch { /* use the plain one */ } }
  const plain = disposition.match(/filename\s*=\s*"?([^";]+)"?/i);
  return plain ? plain[1] : fallback;
}

/** Fetches a file with the secret and saves it; returns its name, or throws with the reason. */
async function download(url, secret, fallback) {
  let res;
  try {
    res = await fetch(url, { headers: { [FACILITATOR_HEADER]: secret }, cache: 'no-store' });
  } catch {
    throw new Error(t.couldNotDownload);
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(typeof body.error === 'string' && body.error ? body.error : t.couldNotDownload);
  }
  const blob = await res.blob();
  const name = fileName(res.headers.get('Content-Disposition') ?? '', fallback);
  const href = URL.createObjectURL(blob);
  const a = el('a', { href, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return name;
}

// ---------------------------------------------------------------------------------------------
// After the event

/**
 * The "After the event" section. `secret()` gives the current facilitator secret; `deleted()`
 * is called once the server has purged the event.
 */
export function afterSection({ ev, secret, deleted }) {
  const status = el('p', { class: 'ev-status', role: 'status' });
  const error = el('p', { class: 'error', id: 'ev-after-error', role: 'alert' });
  let busy = false;
  const run = async (work) => {
    if (busy) return;
    busy = true;
    error.textContent = '';
    status.textContent = t.downloading;
    try {
      status.textContent = t.downloaded(await work());
    } catch (e) {
      status.textContent = '';
      error.textContent = e.message || t.couldNotDownload;
    } finally {
      busy = false;
    }
  };
  const base = `/api/events/${encodeURIComponent(ev.event)}`;

  const snapshot = el('button', {
    type: 'button', text: t.downloadSnapshot, 'aria-describedby': 'ev-snapshot-hint',
    onclick: () => run(() => download(`${base}/snapshot`, secret(), `bothy-${ev.event}.json`)),
  });
  const format = (value, label, checked) => el('label', { class: 'ev-choice' },
    el('input', { type: 'radio', name: 'ev-report-format', value, checked }), label);
  const quoteAll = el('input', { type: 'checkbox', id: 'ev-quote-all', 'aria-describedby': 'ev-quote-all-warning' });
  const reportForm = el('form', {
    class: 'ev-group ev-report',
    onsubmit: (e) => {
      e.preventDefault();
      const f = reportForm.querySelector('input[name="ev-report-format"]:checked')?.value ?? 'html';
      run(() => download(`${base}/report?format=${f}&quote_all=${quoteAll.checked}`, secret(), `bothy-${ev.event}-report.${f}`));
    },
  },
  el('fieldset', { class: 'ev-choices' }, el('legend', { text: t.reportFormat }),
    format('html', t.formatHtml, true), format('csv', t.formatCsv, false), format('md', t.formatMd, false)),
  el('label', { class: 'ev-choice', for: quoteAll.id }, quoteAll, t.quoteAll),
  el('p', { class: 'warning', id: 'ev-quote-all-warning', text: t.quoteAllWarning }),
  el('button', { type: 'submit', text: t.downloadReport }));

  // Deleting: a confirm step that names the event.
  const del = el('button', {
    type: 'button', class: 'ev-danger', text: t.deleteEvent, 'aria-expanded': 'false', 'aria-controls': 'ev-delete',
    'aria-describedby': 'ev-delete-hint',
  });
  const yes = el('button', { type: 'button', class: 'ev-danger', dir: 'auto', text: t.deleteYes(ev.title), 'aria-describedby': 'ev-delete-warning' });
  const no = el('button', { type: 'button', text: t.cancel });
  const deleteStatus = el('p', { class: 'ev-status', role: 'status' });
  const deleteError = el('p', { class: 'error', role: 'alert' });
  const confirm = el('div', { id: 'ev-delete', class: 'ev-confirm', hidden: true },
    el('p', { id: 'ev-delete-warning', dir: 'auto', text: t.deleteWarning(ev.title) }), yes, no);
  const close = () => { confirm.hidden = true; del.setAttribute('aria-expanded', 'false'); del.focus(); };
  del.addEventListener('click', () => {
    confirm.hidden = !confirm.hidden;
    del.setAttribute('aria-expanded', String(!confirm.hidden));
    if (!confirm.hidden) yes.focus();
  });
  no.addEventListener('click', close);
  confirm.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });
  let deleting = false;
  yes.addEventListener('click', async () => {
    if (deleting) return;
    deleting = true;
    deleteError.textContent = '';
    deleteStatus.textContent = t.deleting;
    const answer = await call(ev.event, secret(), 'DELETE', '');
    deleting = false;
    deleteStatus.textContent = '';
    if (answer.ok) { deleted(); return; }
    deleteError.textContent = problem(answer, t.couldNotDelete);
  });

  return el('section', { class: 'ev-section ev-after', 'aria-labelledby': 'ev-after-h' },
    el('h2', { id: 'ev-after-h', text: t.afterHeading }),
    el('p', { text: t.afterIntro }),
    el('div', { class: 'ev-after-grid' },
      el('div', { class: 'ev-group' },
        el('p', { class: 'hint', id: 'ev-snapshot-hint', text: t.snapshotHint }), snapshot),
      reportForm),
    status, error,
    el('div', { class: 'ev-group ev-delete-group' },
      el('p', { class: 'hint', id: 'ev-delete-hint', text: t.deleteHint }), del, confirm, deleteStatus, deleteError));
}

// ---------------------------------------------------------------------------------------------
// Themes across rooms

/**
 * The synthesis board. `rooms` are the overview's rooms (each with `room`, `name` and the live
 * `board`); `secret()` the current facilitator secret; `log(text)` adds to "What happened".
 */
export class Synthesis {
  constructor({ ev, rooms, secret, log }) {
    this.ev = ev;
    this.rooms = rooms;
    this.secret = secret;
    this.log = log;
    this.themes = [];
    this.suggestions = [];
    this.suggestCounter = 0;
    this.renaming = null; // theme id whose name is being changed
    this.busy = false;
    this.roomKeys = new Map(); // room id → what its "Themes in this room" list was built from

    this.list = el('ul', { class: 'syn-themes' });
    this.result = el('p', { class: 'ev-result', id: 'syn-result' });
    this.title = el('input', { id: 'syn-new', autocomplete: 'off', maxlength: '120', 'aria-describedby': 'syn-new-error' });
    this.titleError = el('p', { class: 'error', id: 'syn-new-error', role: 'alert' });
    const form = el('form', { class: 'syn-new', onsubmit: (e) => { e.preventDefault(); this.create(); } },
      el('label', { for: this.title.id, text: t.synthNewTheme }), this.title, this.titleError,
      el('button', { type: 'submit', text: t.synthAddTheme }));
    this.suggestButton = el('button', { type: 'button', text: t.suggestThemes, 'aria-describedby': 'syn-suggest-hint', onclick: () => this.suggest() });
    this.suggestStatus = el('p', { class: 'ev-status', role: 'status' });
    this.suggestBox = el('div', { class: 'syn-suggestions' });
    this.heading = el('h2', { id: 'syn-h', tabindex: '-1', text: t.synthHeading });
    this.section = el('section', { class: 'ev-section syn', 'aria-labelledby': 'syn-h' },
      this.heading,
      el('p', { text: t.synthIntro }),
      form, this.result, this.list,
      el('h3', { id: 'syn-suggest-h', text: t.suggestionsHeading }),
      el('p', { class: 'hint', id: 'syn-suggest-hint', text: t.suggestHint }),
      this.suggestButton, this.suggestStatus, this.suggestBox);
    this.render();
  }

  async load() {
    const answer = await call(this.ev.event, this.secret(), 'GET', '/synthesis');
    if (answer.ok && Array.isArray(answer.body.themes)) this.setThemes(answer.body.themes);
    else this.result.textContent = problem(answer, t.synthLoadFailed);
  }

  setThemes(themes) {
    this.themes = themes;
    this.render();
    for (const room of this.rooms) this.updateRoom(room);
  }

  roomName(id) { return this.rooms.find((r) => r.room === id)?.name ?? id; }

  /** A note's words from its room's live board ('' until the board has loaded). */
  noteText(ref) {
    const room = this.rooms.find((r) => r.room === ref.room);
    if (!room?.board) return '';
    const n = room.board.notes.get(ref.note);
    if (!n) return t.noteGone;
    return n.moderation === 'removed' ? t.removedNote : n.text;
  }

  /** Sends one change; on success shows the new themes and logs `done(body)`. */
  async change(op, done) {
    if (this.busy) return null;
    this.busy = true;
    const answer = await call(this.ev.event, this.secret(), 'POST', '/synthesis', op);
    this.busy = false;
    if (answer.ok && Array.isArray(answer.body.themes)) {
      this.setThemes(answer.body.themes);
      if (done) this.say(done(answer.body));
      return answer.body;
    }
    this.say(t.synthFailed(problem(answer, t.couldNotSave)));
    return null;
  }

  say(text) {
    this.result.textContent = text;
    this.log(text);
  }

  async create() {
    const title = this.title.value.trim();
    if (!title) {
      this.titleError.textContent = t.needThemeTitle;
      this.title.setAttribute('aria-invalid', 'true');
      this.title.focus();
      return;
    }
    this.titleError.textContent = '';
    this.title.removeAttribute('aria-invalid');
    const body = await this.change({ kind: 'create_theme', title }, () => t.synthCreated(title));
    if (body) { this.title.value = ''; this.title.focus(); }
  }

  render() {
    const active = document.activeElement;
    const keep = active && this.list.contains(active) && active.id ? active.id : null;
    if (!this.themes.length) {
      this.list.replaceChildren(el('li', { class: 'hint', text: t.synthNone }));
    } else {
      this.list.replaceChildren(...this.themes.map((theme) => this.themeItem(theme)));
    }
    if (keep) document.getElementById(keep)?.focus();
  }

  themeItem(theme) {
    const id = `syn-${theme.id}`;
    const head = el('h3', { id: `${id}-h`, tabindex: '-1', dir: 'auto', text: theme.title });
    let top;
    if (this.renaming === theme.id) {
      const input = el('input', { id: `${id}-name`, autocomplete: 'off', maxlength: '120', value: theme.title });
      const done = () => { this.renaming = null; this.render(); document.getElementById(`${id}-rename`)?.focus(); };
      input.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); done(); } });
      top = el('form', { class: 'syn-head', onsubmit: async (e) => {
        e.preventDefault();
        const title = input.value.trim();
        if (!title || title === theme.title) { done(); return; }
        this.renaming = null;
        await this.change({ kind: 'rename_theme', theme: theme.id, title }, () => t.synthRenamed(title));
        document.getElementById(`${id}-rename`)?.focus();
      } }, el('label', { for: input.id, text: t.synthThemeName }), input,
      el('button', { type: 'submit', text: t.save }), el('button', { type: 'button', text: t.cancel, onclick: done }));
    } else {
      top = el('div', { class: 'syn-head' }, head,
        el('span', { class: 'syn-count', text: t.synthNotes(theme.notes.length) }),
        el('button', { type: 'button', id: `${id}-rename`, 'aria-describedby': head.id, text: t.synthRename,
          onclick: () => { this.renaming = theme.id; this.render(); document.getElementById(`${id}-name`)?.focus(); } }),
        el('button', { type: 'button', id: `${id}-delete`, 'aria-describedby': head.id, text: t.synthDelete,
          onclick: async () => {
            const title = theme.title;
            if (await this.change({ kind: 'delete_theme', theme: theme.id }, () => t.synthDeleted(title))) this.heading.focus();
          } }));
    }
    const notes = theme.notes.map((ref, i) => {
      const textId = `${id}-n${i}`;
      const text = this.noteText(ref);
      return el('li', { class: 'syn-note' },
        el('span', { class: 'syn-room', dir: 'auto', text: t.fromRoom(this.roomName(ref.room)) }),
        el('span', { id: textId, class: 'syn-text', dir: 'auto', 'data-room': ref.room, 'data-note': String(ref.note), text }),
        el('button', { type: 'button', id: `${id}-out-${ref.room}-${ref.note}`, class: 'syn-out',
          onclick: async () => {
            const words = excerpt(this.noteText(ref));
            const body = await this.change({ kind: 'remove_note', theme: theme.id, note: { room: ref.room, note: ref.note } },
              () => t.synthTakenOut(words, theme.title));
            if (body) document.getElementById(`${id}-h`)?.focus();
          } },
        t.takeOut, el('span', { class: 'visually-hidden', 'data-room': ref.room, 'data-note': String(ref.note),
          'data-theme': theme.title, text: t.takeOutOf(excerpt(text), theme.title) })));
    });
    return el('li', {}, el('article', { class: 'syn-theme', 'aria-labelledby': this.renaming === theme.id ? `${id}-name` : head.id },
      top,
      notes.length ? el('ul', { class: 'syn-notes' }, ...notes) : el('p', { class: 'hint', text: t.synthEmptyTheme })));
  }

  /** Fills in note words once their room's board has loaded or changed (no control moves). */
  refreshTexts() {
    for (const node of this.section.querySelectorAll('[data-room][data-note]')) {
      const ref = { room: node.dataset.room, note: Number(node.dataset.note) };
      const text = this.noteText(ref);
      const want = node.dataset.theme != null ? t.takeOutOf(excerpt(text), node.dataset.theme) : text;
      if (node.textContent !== want) node.textContent = want;
    }
  }

  // --- On each room's card: its themes, each with "Add to theme across rooms…"

  /** The node the room's card shows its themes in. */
  roomNode(room) {
    room.synNode = room.synNode ?? el('div', { class: 'syn-room-themes' });
    return room.synNode;
  }

  /** Rebuilds a card's list of themes when they (or the themes across rooms) changed. */
  updateRoom(room) {
    const node = room.synNode;
    if (!node || !room.board) return;
    const themes = [...room.board.themes.values()];
    // Notes in no theme (of the room or across rooms), to pull in one at a time.
    const placed = new Set(this.themes.flatMap((x) => x.notes.map((n) => `${n.room}:${n.note}`)));
    const loose = [...room.board.notes.values()].filter((n) => n.theme == null && !n.moderation && !n.private
      && !placed.has(`${room.room}:${n.id}`));
    const key = JSON.stringify([themes.map((x) => [x.id, x.title, x.notes.length]), this.themes.map((x) => [x.id, x.title]),
      loose.map((n) => [n.id, n.text])]);
    if (this.roomKeys.get(room.room) === key) return;
    this.roomKeys.set(room.room, key);
    const active = document.activeElement;
    const keep = active && node.contains(active) && active.id ? active.id : null;
    const chosen = new Map([...node.querySelectorAll('select')].map((s) => [s.id, s.value]));
    const base = `room-${room.room}-syn`;
    node.replaceChildren(...[el('h4', { text: t.roomThemes }),
      !themes.length ? el('p', { class: 'hint', text: t.noRoomThemes })
        : el('ul', { class: 'syn-room-list' }, ...themes.map((theme) => {
          const sel = `${base}-${theme.id}`;
          const label = el('p', { class: 'syn-room-theme' }, el('span', { dir: 'auto', text: theme.title }),
            ` (${t.synthNotes(theme.notes.length)})`);
          if (!this.themes.length) return el('li', {}, label);
          const select = el('select', { id: sel },
            ...this.themes.map((x) => el('option', { value: String(x.id), text: x.title })));
          if (chosen.has(sel) && [...select.options].some((o) => o.value === chosen.get(sel))) select.value = chosen.get(sel);
          return el('li', {}, label,
            el('label', { for: sel }, t.addToSynth, el('span', { class: 'visually-hidden', text: t.addToSynthFor(theme.title) })),
            el('div', { class: 'syn-add' }, select,
              el('button', { type: 'button', id: `${sel}-add`, onclick: () => this.addRoomTheme(room, theme, Number(select.value)) },
                t.addToSynthButton, el('span', { class: 'visually-hidden', text: t.addToSynthFor(theme.title) }))));
        })),
      themes.length && !this.themes.length ? el('p', { class: 'hint', text: t.makeSynthFirst }) : null,
      loose.length && this.themes.length ? this.looseNotes(room, loose, base, chosen) : null].filter(Boolean));
    if (keep) {
      const again = document.getElementById(keep);
      again?.closest('details')?.setAttribute('open', '');
      again?.focus();
    }
  }

  /** "Notes in no theme": each with a theme across rooms to add it to. */
  looseNotes(room, loose, base, chosen) {
    const open = room.synNode.querySelector('details.syn-loose')?.open;
    return el('details', { class: 'syn-loose', open: open || null },
      el('summary', { text: t.looseNotes(loose.length) }),
      el('ul', { class: 'syn-room-list' }, ...loose.map((n) => {
        const sel = `${base}-n${n.id}`;
        const select = el('select', { id: sel },
          ...this.themes.map((x) => el('option', { value: String(x.id), text: x.title })));
        if (chosen.has(sel) && [...select.options].some((o) => o.value === chosen.get(sel))) select.value = chosen.get(sel);
        const words = excerpt(n.text);
        return el('li', {},
          el('p', { class: 'syn-room-theme', dir: 'auto', text: n.text }),
          el('label', { for: sel }, t.addToSynth, el('span', { class: 'visually-hidden', text: t.addToSynthFor(words) })),
          el('div', { class: 'syn-add' }, select,
            el('button', { type: 'button', id: `${sel}-add`, onclick: () => this.addNote(room, n, Number(select.value)) },
              t.addToSynthButton, el('span', { class: 'visually-hidden', text: t.addToSynthFor(words) }))));
      })));
  }

  async addNote(room, note, target) {
    const synth = this.themes.find((x) => x.id === target);
    if (!synth) return;
    const words = excerpt(note.text);
    await this.change({ kind: 'add_notes', theme: target, notes: [{ room: room.room, note: note.id }] }, (body) => {
      const now = body.themes.find((x) => x.id === target);
      return t.synthAdded(`“${words}” (${room.name})`, now?.title ?? synth.title, now?.notes.length ?? 0);
    });
  }

  async addRoomTheme(room, roomTheme, target) {
    const synth = this.themes.find((x) => x.id === target);
    if (!synth) return;
    const what = t.roomThemeWhat(roomTheme.title, room.name);
    await this.change({ kind: 'add_room_theme', theme: target, room: room.room, room_theme: roomTheme.id }, (body) => {
      const now = body.themes.find((x) => x.id === target);
      return t.synthAdded(what, now?.title ?? synth.title, now?.notes.length ?? 0);
    });
  }

  // --- Suggested themes

  async suggest() {
    if (this.busy) return;
    this.busy = true;
    this.suggestStatus.textContent = t.suggesting;
    const answer = await call(this.ev.event, this.secret(), 'POST', '/suggestions');
    this.busy = false;
    if (!answer.ok || !Array.isArray(answer.body.suggestions)) {
      this.suggestStatus.textContent = problem(answer, t.couldNotSave);
      return;
    }
    this.suggestions = answer.body.suggestions.map((s) => ({ ...s, key: `syn-s${++this.suggestCounter}` }));
    this.suggestStatus.textContent = this.suggestions.length ? t.suggestionsFound(this.suggestions.length) : t.noSuggestions;
    this.renderSuggestions();
  }

  renderSuggestions() {
    this.suggestBox.replaceChildren(...(this.suggestions.length ? [el('ul', { class: 'syn-suggest-list' },
      ...this.suggestions.map((s) => this.suggestionItem(s)))] : []));
  }

  suggestionItem(s) {
    const name = el('input', { id: `${s.key}-name`, autocomplete: 'off', maxlength: '120', value: s.title });
    const error = el('p', { class: 'error', id: `${s.key}-error`, role: 'alert' });
    const done = (focusAfter) => {
      const i = this.suggestions.indexOf(s);
      this.suggestions = this.suggestions.filter((x) => x !== s);
      this.renderSuggestions();
      const next = this.suggestions[Math.min(i, this.suggestions.length - 1)];
      (focusAfter ?? (next ? document.getElementById(`${next.key}-h`) : this.suggestButton))?.focus();
    };
    const accept = async () => {
      const title = name.value.trim();
      if (!title) { error.textContent = t.needThemeTitle; name.setAttribute('aria-invalid', 'true'); name.focus(); return; }
      const created = await this.change({ kind: 'create_theme', title });
      if (!created) return;
      const notes = s.notes.map((n) => ({ room: n.room, note: n.note }));
      const body = await this.change({ kind: 'add_notes', theme: created.created, notes }, () => t.accepted(title, notes.length));
      if (body) done(document.getElementById(`syn-${created.created}-h`));
    };
    return el('li', {}, el('article', { class: 'syn-suggestion', 'aria-labelledby': `${s.key}-h` },
      el('h4', { id: `${s.key}-h`, tabindex: '-1', dir: 'auto', text: s.title }),
      Array.isArray(s.words) && s.words.length ? el('p', { class: 'hint', dir: 'auto', text: t.suggestionWords(s.words.join(', ')) }) : null,
      el('ul', { class: 'syn-notes' }, ...s.notes.map((n) => el('li', { class: 'syn-note' },
        el('span', { class: 'syn-room', dir: 'auto', text: t.fromRoom(this.roomName(n.room)) }),
        el('span', { class: 'syn-text', dir: 'auto', text: n.text ?? this.noteText(n) })))),
      el('label', { for: name.id, text: t.suggestionName }), name, error,
      el('div', { class: 'ev-buttons' },
        el('button', { type: 'button', onclick: accept }, t.accept, el('span', { class: 'visually-hidden', text: t.acceptFor(s.title) })),
        el('button', { type: 'button', onclick: () => { this.say(t.dismissed(name.value.trim() || s.title)); done(); } },
          t.dismiss, el('span', { class: 'visually-hidden', text: t.acceptFor(s.title) })))));
  }
}
