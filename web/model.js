// The board model in the browser: the same rules as the server's `Board::replay`, applied to
// operations the server has confirmed, in sequence order. Pure: no DOM, no network.

/** @typedef {{id:number,text:string,colour:string,x:number,y:number,author:?string,created_at:number,updated_at:number,theme:?number}} Note */
/** @typedef {{id:number,title:string,notes:number[]}} Theme */
/** @typedef {{prompt:string,notes:Map<number,Note>,themes:Map<number,Theme>}} Board */

export const PALETTE = ['yellow', 'pink', 'blue', 'green', 'orange', 'purple'];
export const BOARD_WIDTH = 3000;
export const BOARD_HEIGHT = 2000;

/** Length as the server counts it: Unicode scalar values. */
export const charLength = (s) => [...s].length;

/** @returns {Board} */
export function fromWire(board) {
  return {
    prompt: board.prompt,
    notes: new Map(board.notes.map((n) => [n.id, { ...n }])),
    themes: new Map(board.themes.map((t) => [t.id, { ...t, notes: [...t.notes] }])),
  };
}

/** Applies one confirmed operation. `created` is the id the server assigned, if any. */
export function applyOp(board, op, { created, at, author }) {
  const note = board.notes.get(op.note);
  const leaveTheme = (n) => {
    const t = n.theme != null && board.themes.get(n.theme);
    if (t) t.notes = t.notes.filter((id) => id !== n.id);
    n.theme = null;
  };
  switch (op.kind) {
    case 'create_note':
      board.notes.set(created, {
        id: created, text: op.text, colour: op.colour, x: op.x, y: op.y,
        author, created_at: at, updated_at: at, theme: null,
      });
      break;
    case 'edit_note': if (note) Object.assign(note, { text: op.text, updated_at: at }); break;
    case 'recolour_note': if (note) Object.assign(note, { colour: op.colour, updated_at: at }); break;
    case 'move_note': if (note) Object.assign(note, { x: op.x, y: op.y, updated_at: at }); break;
    case 'delete_note':
      if (note) { leaveTheme(note); board.notes.delete(op.note); }
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
