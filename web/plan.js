// "Plan an event" on the home page: a title, anonymous or named, and a list of rooms (each a
// name and a prompt), filled by hand or from a template in one click. Creating the event sends
// the facilitator to its overview. Loaded with a dynamic import from the home page only.

import { strings as t } from './strings-events.js';
import { el } from './view.js';

const MAX_ROOMS = 20; // the server's limit; it checks again
const TITLE_CHARS = 120;
const NAME_CHARS = 60;
const PROMPT_CHARS = 300;

/** Says something through the page's polite status region, without moving focus. */
function announce(text) {
  const node = document.getElementById('announcer');
  if (!node) return;
  node.textContent = '';
  requestAnimationFrame(() => { node.textContent = text; });
}

/** Appends the "Plan an event" section to `main`. */
export function renderPlan(main) {
  /** @type {{name: string, prompt: string}[]} the rooms as typed; read back before each change */
  let rooms = t.templates.find((x) => x.rooms.every((r) => !r.prompt)).rooms.map((r) => ({ ...r }));
  let busy = false;

  const title = el('input', {
    id: 'plan-title', autocomplete: 'off', maxlength: String(TITLE_CHARS), 'aria-describedby': 'plan-title-hint',
  });
  const names = el('fieldset', { class: 'plan-choices' }, el('legend', { text: t.namesLegend }),
    el('label', { class: 'plan-choice' },
      el('input', { type: 'radio', name: 'plan-names', value: 'anonymous', checked: true }), t.anonymousEvent),
    el('label', { class: 'plan-choice' },
      el('input', { type: 'radio', name: 'plan-names', value: 'named' }), t.namesAllowed));
  const templates = el('fieldset', { class: 'plan-templates', 'aria-describedby': 'plan-templates-hint' },
    el('legend', { text: t.templatesLegend }),
    el('p', { class: 'hint', id: 'plan-templates-hint', text: t.templatesHint }),
    el('div', { class: 'plan-template-buttons' }, ...t.templates.map((tpl) => el('button', {
      type: 'button', text: tpl.name,
      onclick: () => {
        rooms = tpl.rooms.map((r) => ({ ...r }));
        renderRooms();
        clearError();
        announce(t.templateFilled(tpl.name, rooms.length));
      },
    }))));
  const list = el('ol', { class: 'plan-rooms', 'aria-labelledby': 'plan-rooms-h' });
  const add = el('button', { type: 'button', class: 'plan-add', text: t.addRoom, onclick: addRoom });
  const error = el('p', { class: 'error', id: 'plan-error', role: 'alert' });
  const submit = el('button', { type: 'submit', class: 'plan-submit', text: t.createEvent });
  const retention = el('input', {
    id: 'plan-retention', type: 'number', inputmode: 'numeric', min: '1', max: '3650', value: '90',
    'aria-describedby': 'plan-retention-hint',
  });

  const form = el('form', { class: 'plan', novalidate: true, onsubmit: (e) => { e.preventDefault(); create(); } },
    el('label', { for: 'plan-title', text: t.eventTitle }),
    el('p', { class: 'hint', id: 'plan-title-hint', text: t.eventTitleHint }),
    title, names, templates,
    el('h3', { id: 'plan-rooms-h', text: t.roomsHeading }),
    list, add,
    el('label', { for: 'plan-retention', text: t.retentionLabel }),
    el('p', { class: 'hint', id: 'plan-retention-hint', text: t.retentionHint }),
    retention,
    error, submit);

  main.append(el('section', { class: 'plan-section', 'aria-labelledby': 'plan-h' },
    el('h2', { id: 'plan-h', text: t.planHeading }),
    el('p', { text: t.planIntro }),
    form));
  renderRooms();
  main.append(restoreSection());

  /** Copies what is typed in the room fields back into `rooms`. */
  function readRooms() {
    rooms = rooms.map((r, i) => ({
      name: document.getElementById(`plan-room-${i + 1}-name`)?.value ?? r.name,
      prompt: document.getElementById(`plan-room-${i + 1}-prompt`)?.value ?? r.prompt,
    }));
  }

  function renderRooms() {
    list.replaceChildren(...rooms.map((r, index) => {
      const i = index + 1;
      const name = el('input', { id: `plan-room-${i}-name`, autocomplete: 'off', maxlength: String(NAME_CHARS) });
      name.value = r.name;
      const prompt = el('textarea', {
        id: `plan-room-${i}-prompt`, rows: '2', maxlength: String(PROMPT_CHARS), 'aria-describedby': `plan-room-${i}-hint`,
      });
      prompt.value = r.prompt;
      return el('li', {},
        el('fieldset', { class: 'plan-room' },
          el('legend', { text: t.roomLegend(i) }),
          el('label', { for: name.id, text: t.roomName(i) }), name,
          el('label', { for: prompt.id, text: t.roomPrompt(i) }),
          el('p', { class: 'hint', id: `plan-room-${i}-hint`, text: t.roomPromptHint }), prompt,
          el('button', { type: 'button', class: 'plan-remove', text: t.removeRoom(i), onclick: () => removeRoom(index) })));
    }));
  }

  function addRoom() {
    readRooms();
    if (rooms.length >= MAX_ROOMS) { showError(t.tooManyRooms(MAX_ROOMS)); return; }
    clearError();
    rooms.push({ name: '', prompt: '' });
    renderRooms();
    document.getElementById(`plan-room-${rooms.length}-name`).focus();
    announce(t.roomAdded(rooms.length));
  }

  function removeRoom(index) {
    readRooms();
    rooms.splice(index, 1);
    renderRooms();
    clearError();
    // Focus goes to the room that took its place, else the one before, else "Add a room".
    const next = Math.min(index, rooms.length - 1);
    if (next >= 0) document.getElementById(`plan-room-${next + 1}-name`).focus();
    else add.focus();
    announce(t.roomRemoved(index + 1, rooms.length));
  }

  // A problem with one field shows under that field (where the focus goes) and in the alert
  // above the button (which is read out).
  const fieldError = el('p', { class: 'error', id: 'plan-field-error' });

  function clearError() {
    error.textContent = '';
    fieldError.remove();
    for (const bad of form.querySelectorAll('[aria-invalid]')) {
      bad.removeAttribute('aria-invalid');
      const ids = (bad.getAttribute('aria-describedby') ?? '').split(' ').filter((id) => id && id !== fieldError.id);
      if (ids.length) bad.setAttribute('aria-describedby', ids.join(' ')); else bad.removeAttribute('aria-describedby');
    }
  }

  function showError(message, field) {
    clearError();
    error.textContent = message;
    if (field) {
      fieldError.textContent = message;
      field.after(fieldError);
      field.setAttribute('aria-invalid', 'true');
      field.setAttribute('aria-describedby', `${field.getAttribute('aria-describedby') ?? ''} ${fieldError.id}`.trim());
      field.focus();
    }
  }

  async function create() {
    if (busy) return;
    readRooms();
    if (!title.value.trim()) { showError(t.needTitle, title); return; }
    if (!rooms.length) { showError(t.needRoom, add); return; }
    for (const [index, r] of rooms.entries()) {
      const i = index + 1;
      if (!r.name.trim()) { showError(t.needName(i), document.getElementById(`plan-room-${i}-name`)); return; }
      if (!r.prompt.trim()) { showError(t.needPrompt(i), document.getElementById(`plan-room-${i}-prompt`)); return; }
    }
    const days = Number(retention.value);
    if (!Number.isInteger(days) || days < 1 || days > 3650) { showError(t.badRetention, retention); return; }
    clearError();
    busy = true;
    submit.setAttribute('aria-disabled', 'true');
    announce(t.creating);
    const anonymous = form.querySelector('input[name="plan-names"]:checked')?.value !== 'named';
    try {
      const res = await fetch('/api/events', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          title: title.value.trim(), anonymous, retention_days: days,
          rooms: rooms.map((r) => ({ name: r.name.trim(), prompt: r.prompt.trim() })),
        }),
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok && typeof body.facilitator_link === 'string' && body.facilitator_link.startsWith('/e/')) {
        location.assign(body.facilitator_link);
        return;
      }
      showError(typeof body.error === 'string' && body.error ? body.error : t.couldNotCreate);
    } catch {
      showError(t.couldNotCreate);
    } finally {
      busy = false;
      submit.removeAttribute('aria-disabled');
    }
  }
}

const RESTORE_BYTES = 8 * 1024 * 1024; // the server's limit; it checks again

/** "Bring back an event from a snapshot file": upload a snapshot, land on the new overview. */
function restoreSection() {
  const file = el('input', { id: 'restore-file', type: 'file', accept: '.json,application/json', 'aria-describedby': 'restore-hint restore-error' });
  const error = el('p', { class: 'error', id: 'restore-error', role: 'alert' });
  const submit = el('button', { type: 'submit', text: t.restoreButton });
  let busy = false;
  const fail = (message) => {
    error.textContent = message;
    file.setAttribute('aria-invalid', 'true');
    file.focus();
  };
  const form = el('form', { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    if (busy) return;
    error.textContent = '';
    file.removeAttribute('aria-invalid');
    const chosen = file.files?.[0];
    if (!chosen) { fail(t.restoreNoFile); return; }
    if (chosen.size > RESTORE_BYTES) { fail(t.restoreTooBig); return; }
    busy = true;
    submit.setAttribute('aria-disabled', 'true');
    announce(t.restoring);
    try {
      const res = await fetch('/api/events/restore', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: await chosen.text(),
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok && typeof body.facilitator_link === 'string' && body.facilitator_link.startsWith('/e/')) {
        location.assign(body.facilitator_link);
        return;
      }
      fail(typeof body.error === 'string' && body.error ? body.error : t.couldNotRestore);
    } catch {
      fail(t.couldNotRestore);
    } finally {
      busy = false;
      submit.removeAttribute('aria-disabled');
    }
  } },
  el('label', { for: file.id, text: t.restoreFile }), file, error, submit);
  return el('section', { class: 'restore', 'aria-labelledby': 'restore-h' },
    el('h2', { id: 'restore-h', text: t.restoreHeading }),
    el('p', { class: 'hint', id: 'restore-hint', text: t.restoreIntro }),
    form);
}
