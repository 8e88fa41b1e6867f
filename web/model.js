// The board model in the browser: the same rules as the server's `Board::apply_checked`,
// applied to operations the server has confirmed, in sequence order. Pure: no DOM, no network.
//
// Some changes show or hide things an operation cannot carry (a reveal, a hidden note, voting
// opening or closing): participants then get a whole new board (`sync`), and facilitators get
// the operation followed by a `sync`. Those kinds are applied minimally here.

/** @typedef {{id:number,text:string,colour:string,x:number,y:number,author:?string,created_at:number,
 *   updated_at:number,theme:?number,private:boolean,moderation:?('hidden'|'removed'),
 *   moderation_reason:?string,proxy:boolean,votes:?number,quotable:boolean}} Note */
/** @typedef {{id:number,title:string,notes:number[]}} Theme */
/** @typedef {{ends_at:number,on_end:'nothing'|'lock'}} Timer */
/** @typedef {{anonymous:boolean,writing:'open'|'private',locked:boolean,
 *   voting:?{budget:number,show_tallies:boolean},theming:'everyone'|'facilitators',
 *   spotlight:?number,timer:?Timer}} RoomState */
/** @typedef {{at:number,action:'hide'|'unhide'|'remove',note:number,reason:?string,by:?string}} AuditEntry */
/** @typedef {{name:string,prompt:string,notes:Map<number,Note>,themes:Map<number,Theme>,
 *   state:RoomState,audit:AuditEntry[],facilitator:boolean}} Board */

export const PALETTE = ['yellow', 'pink', 'blue', 'green', 'orange', 'purple'];
export const BOARD_WIDTH = 3000;
export const BOARD_HEIGHT = 2000;

/** Length as the server counts it: Unicode scalar values. */
export const charLength = (s) => [...s].length;

const DEFAULT_STATE = {
  anonymous: false, writing: 'open', locked: false, voting: null, theming: 'everyone', spotlight: null, timer: null,
};

const NOTE_DEFAULTS = {
  author: null, theme: null, private: false, moderation: null, moderation_reason: null, proxy: false, votes: null, quotable: false };

/**
 * Reads a board as the server sends it. `facilitator`: the board is a facilitator's view
 * (tallies are always shown to them), which decides what a new note's tally starts at.
 * @returns {Board}
 */
export function fromWire(board, { facilitator = false } = {}) {
  const state = { ...DEFAULT_STATE, ...(board.state ?? {}) };
  if (state.voting) state.voting = { ...state.voting };
  if (state.timer) state.timer = { ...state.timer };
  return {
    name: board.name ?? '',
    prompt: board.prompt,
    notes: new Map(board.notes.map((n) => [n.id, { ...NOTE_DEFAULTS, ...n }])),
    themes: new Map(board.themes.map((t) => [t.id, { ...t, notes: [...t.notes] }])),
    state,
    audit: (board.audit ?? []).map((a) => ({ ...a })),
    facilitator,
  };
}

/** Whether this board's viewer is shown the running tallies (the server's `tallies_visible`). */
export function talliesVisible(board, facilitator = board.facilitator) {
  return Boolean(facilitator) || !board.state.voting || board.state.voting.show_tallies;
}

/**
 * Applies one confirmed operation. `created` is the id the server assigned, if any; `at` the
 * server time; `author` the new note's author as shown; `facilitator` overrides the board's own
 * idea of whether its viewer is a facilitator.
 */
export function applyOp(board, op, { created, at, author, facilitator = board.facilitator } = {}) {
  const note = op.note == null ? undefined : board.notes.get(op.note);
  const state = board.state;
  const leaveTheme = (n) => {
    const t = n.theme != null && board.themes.get(n.theme);
    if (t) t.notes = t.notes.filter((id) => id !== n.id);
    n.theme = null;
  };
  const unspotlight = (id) => { if (state.spotlight === id) state.spotlight = null; };
  const audit = (action, reason) => board.audit.push({ at, action, note: op.note, reason: reason ?? null, by: null });
  switch (op.kind) {
    case 'create_note':
    case 'proxy_note': {
      const proxy = op.kind === 'proxy_note';
      board.notes.set(created, {
        id: created, text: op.text, colour: op.colour, x: op.x, y: op.y,
        author: proxy || state.anonymous ? null : author ?? null, created_at: at, updated_at: at, theme: null,
        private: state.writing === 'private', moderation: null, moderation_reason: null, proxy,
        votes: talliesVisible(board, facilitator) ? 0 : null, quotable: false,
      });
      break;
    }
    case 'edit_note': if (note) Object.assign(note, { text: op.text, updated_at: at }); break;
    case 'recolour_note': if (note) Object.assign(note, { colour: op.colour, updated_at: at }); break;
    case 'set_quotable': if (note) note.quotable = Boolean(op.quotable); break;
    case 'move_note': if (note) Object.assign(note, { x: op.x, y: op.y, updated_at: at }); break;
    case 'delete_note':
      if (note) { leaveTheme(note); board.notes.delete(op.note); }
      unspotlight(op.note);
      break;
    case 'create_theme': board.themes.set(created, { id: created, title: op.title, notes: [] }); break;
    case 'rename_theme': {
      const t = board.themes.get(op.theme);
      if (t) t.title = op.title;
      break;
    }
    case 'delete_theme': {
      const t = board.themes.get(op.theme);
      if (t) for (const id of t.notes) { const n = board.notes.get(id); if (n) n.theme = null; }
      board.themes.delete(op.theme);
      break;
    }
    case 'set_note_theme': {
      if (!note) break;
      leaveTheme(note);
      const t = op.theme != null && board.themes.get(op.theme);
      if (t) {
        const at2 = op.position == null ? t.notes.length : Math.min(op.position, t.notes.length);
        t.notes.splice(at2, 0, note.id);
        note.theme = t.id;
      }
      note.updated_at = at;
      break;
    }
    case 'vote':
    case 'proxy_vote':
      if (note && note.votes != null) note.votes += 1;
      break;
    case 'unvote':
      if (note && note.votes != null) note.votes = Math.max(0, note.votes - 1);
      break;
    case 'set_writing':
      state.writing = op.writing;
      if (op.writing === 'open') for (const n of board.notes.values()) n.private = false;
      break;
    case 'start_timer': state.timer = { ends_at: at + op.seconds * 1000, on_end: op.on_end }; break;
    case 'stop_timer': state.timer = null; break;
    case 'timer_ended':
      if (state.timer?.on_end === 'lock') state.locked = true;
      state.timer = null;
      break;
    case 'set_locked': state.locked = op.locked; break;
    case 'open_voting': state.voting = { budget: op.budget, show_tallies: op.show_tallies }; break;
    case 'close_voting': state.voting = null; break;
    case 'set_theming': state.theming = op.theming; break;
    case 'spotlight': state.spotlight = op.note ?? null; break;
    case 'hide_note':
    case 'remove_note': {
      const remove = op.kind === 'remove_note';
      if (note) {
        Object.assign(note, { moderation: remove ? 'removed' : 'hidden', moderation_reason: op.reason, updated_at: at });
        if (remove) { note.text = ''; if (note.votes != null) note.votes = 0; }
      }
      unspotlight(op.note);
      audit(remove ? 'remove' : 'hide', op.reason);
      break;
    }
    case 'unhide_note':
      if (note) Object.assign(note, { moderation: null, moderation_reason: null, updated_at: at });
      audit('unhide', null);
      break;
    default: break;
  }
}

/** Notes in reading order: each theme's notes in order, then notes in no theme by id. */
export function outline(board) {
  const themes = [...board.themes.values()].map((t) => ({
    theme: t,
    notes: t.notes.map((id) => board.notes.get(id)).filter(Boolean),
  }));
  const loose = [...board.notes.values()].filter((n) => n.theme == null);
  return { themes, loose };
}
