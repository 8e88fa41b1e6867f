// The facilitator's tools on a room page: a "Facilitator controls" panel (private writing, timer,
// lock, voting, who makes themes, a note for someone without a device, the audit list) and
// controls on each note (show to everyone, hide, unhide, remove, a dot for someone).
// Loaded only when the server says this connection is a facilitator, so participants never
// download it. Owns its own DOM; user text only ever through textContent.

import { strings as common } from './strings.js';
import { strings as own } from './strings-facilitate.js';
import { PALETTE, charLength } from './model.js';
import { el } from './view.js';

const t = { ...common, ...own };
const REASON_CHARS = 200; // the server's limit; it checks again
const MAX_TIMER_SECONDS = 6 * 60 * 60;

/** A block of the panel with its own heading. */
const block = (id, title, ...children) => el('div', { class: 'fac-block', role: 'group', 'aria-labelledby': id },
  el('h3', { id, text: title }), ...children);

const radio = (name, value, label, onchange) => el('label', { class: 'choice' },
  el('input', { type: 'radio', name, value, onchange }), label);

export class Facilitation {
  /**
   * @param {{send: (op: object, announcement?: string) => void, proxyNote: (text: string, colour: string) => boolean,
   *          rerender: () => void, excerpt: (note: object) => string, focusKey: (id: number, key: string) => void}} actions
   */
  constructor(actions) {
    this.actions = actions;
    this.reasonFor = null; // {id, mode: 'hide'|'remove', draft, error}
    const send = (op, said) => actions.send(op, said);

    // Private writing
    this.writingNow = el('p', { class: 'fac-now' });
    this.writingButton = el('button', { type: 'button', id: 'fac-writing',
      onclick: () => send({ kind: 'set_writing', writing: this.state?.writing === 'private' ? 'open' : 'private' }) });

    // Timer
    this.minutes = el('input', { id: 'fac-minutes', type: 'number', min: '0', max: '360', step: '1', inputmode: 'numeric', value: '5' });
    this.seconds = el('input', { id: 'fac-seconds', type: 'number', min: '0', max: '59', step: '1', inputmode: 'numeric', value: '0' });
    this.timerError = el('p', { class: 'error', id: 'fac-timer-error' });
    for (const input of [this.minutes, this.seconds]) input.setAttribute('aria-describedby', 'fac-timer-error');
    const onEnd = el('fieldset', { class: 'choices' }, el('legend', { text: t.atZero }),
      radio('fac-on-end', 'nothing', t.doNothing), radio('fac-on-end', 'lock', t.lockAtZero));
    onEnd.querySelector('input[value="nothing"]').checked = true;
    this.onEnd = onEnd;
    const timerForm = el('form', { class: 'fac-timer', novalidate: true, onsubmit: (e) => {
      e.preventDefault();
      const m = Number(this.minutes.value || 0);
      const sec = Number(this.seconds.value || 0);
      const total = Math.round(m * 60 + sec);
      const ok = Number.isFinite(total) && m >= 0 && sec >= 0 && total >= 1 && total <= MAX_TIMER_SECONDS;
      this.timerError.textContent = ok ? '' : t.badTimer;
      if (!ok) { this.minutes.focus(); return; }
      const on_end = onEnd.querySelector('input:checked')?.value ?? 'nothing';
      send({ kind: 'start_timer', seconds: total, on_end });
    } },
    el('div', { class: 'fac-pair' },
      el('div', {}, el('label', { for: 'fac-minutes', text: t.minutes }), this.minutes),
      el('div', {}, el('label', { for: 'fac-seconds', text: t.seconds }), this.seconds)),
    this.timerError, onEnd,
    el('button', { type: 'submit', id: 'fac-timer-start', text: t.startTimer }),
    el('button', { type: 'button', id: 'fac-timer-stop', text: t.stopTimer, onclick: () => send({ kind: 'stop_timer' }) }));

    // Lock
    this.lockNow = el('p', { class: 'fac-now' });
    this.lockButton = el('button', { type: 'button', id: 'fac-lock',
      onclick: () => send({ kind: 'set_locked', locked: !this.state?.locked }) });

    // Voting
    this.votingNow = el('p', { class: 'fac-now' });
    this.budget = el('input', { id: 'fac-budget', type: 'number', min: '1', max: '99', step: '1', inputmode: 'numeric', value: '3', 'aria-describedby': 'fac-budget-error' });
    this.budgetError = el('p', { class: 'error', id: 'fac-budget-error' });
    this.tallies = el('input', { id: 'fac-tallies', type: 'checkbox' });
    this.votingButton = el('button', { type: 'submit', id: 'fac-voting' });
    const votingForm = el('form', { novalidate: true, onsubmit: (e) => {
      e.preventDefault();
      if (this.state?.voting) { send({ kind: 'close_voting' }); return; }
      const budget = Number(this.budget.value);
      const ok = Number.isInteger(budget) && budget >= 1 && budget <= 99;
      this.budgetError.textContent = ok ? '' : t.badBudget;
      if (!ok) { this.budget.focus(); return; }
      send({ kind: 'open_voting', budget, show_tallies: this.tallies.checked });
    } }, this.votingNow,
    el('label', { for: 'fac-budget', text: t.budget }), this.budget, this.budgetError,
    el('label', { class: 'choice', for: 'fac-tallies' }, this.tallies, t.showTallies),
    this.votingButton);

    // Theming
    this.theming = el('div', { class: 'choices' },
      ...[['everyone', t.themingEveryone], ['facilitators', t.themingFacilitators]].map(([v, label]) =>
        radio('fac-theming', v, label, () => send({ kind: 'set_theming', theming: v }))));

    // A note for someone without a device
    this.proxyText = el('textarea', { id: 'fac-proxy-text', rows: '2' });
    this.proxyColour = el('select', { id: 'fac-proxy-colour' },
      ...PALETTE.map((c) => el('option', { value: c, text: t.colours[c] })));
    const proxyForm = el('form', { class: 'fac-proxy', onsubmit: (e) => {
      e.preventDefault();
      if (actions.proxyNote(this.proxyText.value, this.proxyColour.value)) this.proxyText.value = '';
    } }, el('label', { for: 'fac-proxy-text', text: t.proxyText }), this.proxyText,
    el('label', { for: 'fac-proxy-colour', text: t.colour }), this.proxyColour,
    el('button', { type: 'submit', id: 'fac-proxy-add', text: t.proxyAdd }));

    // The audit list
    this.audit = el('ol', { class: 'audit' });
    this.auditEmpty = el('p', { class: 'empty', text: t.auditEmpty });

    this.panel = el('section', { class: 'facilitate', 'aria-labelledby': 'fac-h' },
      el('h2', { id: 'fac-h', text: t.facHeading }),
      el('p', { class: 'hint', text: t.facIntro }),
      el('div', { class: 'fac-grid' },
        block('fac-writing-h', t.writingLegend, this.writingNow, this.writingButton),
        block('fac-lock-h', t.lockLegend, this.lockNow, this.lockButton),
        block('fac-timer-h', t.timerLegend, timerForm),
        block('fac-voting-h', t.votingLegend, votingForm),
        block('fac-theming-h', t.themingLegend, this.theming),
        block('fac-proxy-h', t.proxyHeading, proxyForm)),
      el('div', { class: 'fac-audit', role: 'group', 'aria-labelledby': 'fac-audit-h' },
        el('h3', { id: 'fac-audit-h', text: t.auditHeading }), this.auditEmpty, this.audit));
  }

  /** Brings the panel up to date without rebuilding it, so the focus stays where it is. */
  update(state) {
    const { board } = state;
    const s = board.state;
    this.state = s;
    const priv = s.writing === 'private';
    this.writingNow.textContent = priv ? t.writingPrivateNow : t.writingOpenNow;
    this.writingButton.textContent = priv ? t.revealAll : t.startPrivate;
    this.lockNow.textContent = s.locked ? t.lockedNow : t.unlockedNow;
    this.lockButton.textContent = s.locked ? t.unlockNow : t.lockNow;
    this.votingNow.textContent = s.voting ? t.votingOpenNow(s.voting.budget, s.voting.show_tallies) : t.votingClosedNow;
    this.votingButton.textContent = s.voting ? t.closeVoting : t.openVoting;
    this.budget.disabled = Boolean(s.voting);
    this.tallies.disabled = Boolean(s.voting);
    if (s.voting) { this.budget.value = String(s.voting.budget); this.tallies.checked = s.voting.show_tallies; }
    for (const r of this.theming.querySelectorAll('input')) r.checked = r.value === s.theming;

    const time = (at) => new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    this.audit.replaceChildren(...board.audit.slice().reverse().map((a) => {
      const n = board.notes.get(a.note);
      return el('li', {},
        el('span', { class: 'audit-time', text: time(a.at) }), ' · ',
        el('strong', { text: t.auditActions[a.action] ?? a.action }), ' · ',
        el('bdi', { text: t.noteRef(a.note, n && n.text ? this.actions.excerpt(n) : '') }),
        a.reason ? ' · ' : '', a.reason ? el('span', {}, `${t.auditReason}: `, el('bdi', { text: a.reason })) : '',
        ' · ', `${t.auditBy}: `, el('bdi', { text: a.by ?? t.aFacilitator }));
    }));
    this.auditEmpty.hidden = board.audit.length > 0;
  }

  /** Controls on one note card. */
  noteControls(note, state) {
    const s = state.board.state;
    const id = note.id;
    const excerpt = this.actions.excerpt(note);
    const label = (action) => t.noteActionLabel(action, excerpt);
    const send = (op, said) => this.actions.send(op, said);
    const box = el('div', { class: 'note-actions fac-note' });
    if (!note.moderation && !note.private) {
      const on = s.spotlight === id;
      box.append(el('button', { type: 'button', 'data-key': 'fac-spot', 'aria-pressed': String(on), 'aria-label': label(t.spotlightNote),
        text: t.spotlightNote, onclick: () => send({ kind: 'spotlight', note: on ? null : id }) }));
    }
    if (s.voting && !note.moderation) {
      box.append(el('button', { type: 'button', 'data-key': 'fac-dot', 'aria-label': label(t.proxyVote), text: t.proxyVote,
        onclick: () => send({ kind: 'proxy_vote', note: id }, t.didProxyVote) }));
    }
    const open = (mode) => {
      this.reasonFor = { id, mode, draft: '', error: '' };
      this.actions.rerender();
      document.getElementById(`reason-${id}`)?.focus();
    };
    if (!note.moderation) {
      box.append(el('button', { type: 'button', 'data-key': 'fac-hide', 'aria-label': label(t.hide), 'aria-expanded': String(this.reasonFor?.id === id && this.reasonFor.mode === 'hide'),
        text: t.hide, onclick: () => open('hide') }));
    }
    if (note.moderation === 'hidden') {
      box.append(el('button', { type: 'button', 'data-key': 'fac-unhide', 'aria-label': label(t.unhide), text: t.unhide,
        onclick: () => send({ kind: 'unhide_note', note: id }, t.didUnhide) }));
    }
    if (note.moderation !== 'removed') {
      box.append(el('button', { type: 'button', 'data-key': 'fac-remove', 'aria-label': label(t.remove), 'aria-expanded': String(this.reasonFor?.id === id && this.reasonFor.mode === 'remove'),
        text: t.remove, onclick: () => open('remove') }));
    }
    const out = [box];
    if (this.reasonFor?.id === id) out.push(this.reasonForm(note));
    return out;
  }

  /** Asks for a short reason (and, to remove, says it cannot be undone). */
  reasonForm(note) {
    const r = this.reasonFor;
    const id = `reason-${note.id}`;
    const remove = r.mode === 'remove';
    const input = el('input', { id, autocomplete: 'off', 'aria-required': 'true', 'data-key': 'fac-reason',
      'aria-describedby': `${id}-error${remove ? ` ${id}-warning` : ''}`, 'aria-invalid': r.error ? 'true' : null });
    input.value = r.draft;
    input.addEventListener('input', () => { r.draft = input.value; });
    const back = () => this.actions.focusKey(note.id, remove ? 'fac-remove' : 'fac-hide');
    const cancel = () => { this.reasonFor = null; this.actions.rerender(); back(); };
    input.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.stopPropagation(); cancel(); } });
    return el('form', { class: 'fac-reason', novalidate: true, onsubmit: (e) => {
      e.preventDefault();
      const reason = input.value.trim();
      if (!reason || charLength(reason) > REASON_CHARS) {
        r.error = t.reasonNeeded;
        r.draft = input.value;
        this.actions.rerender();
        document.getElementById(id)?.focus();
        return;
      }
      this.reasonFor = null;
      this.actions.send({ kind: remove ? 'remove_note' : 'hide_note', note: note.id, reason }, remove ? t.didRemove : t.didHide);
      this.actions.focusKey(note.id, 'note');
    } },
    el('label', { for: id, text: remove ? t.removeReason : t.hideReason }), input,
    remove && el('p', { class: 'warning', id: `${id}-warning`, text: t.removeWarning }),
    el('p', { class: 'error', id: `${id}-error`, text: r.error }),
    el('button', { type: 'submit', 'data-key': 'fac-reason-ok', text: remove ? t.removeNote : t.hideNote }),
    el('button', { type: 'button', 'data-key': 'fac-reason-cancel', text: t.cancel, onclick: cancel }));
  }
}
