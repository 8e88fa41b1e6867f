// Join cards for an event (`/e/<event>/cards`): one printable card per room with its name,
// prompt, join code in large letters, link and QR code. The secret comes from the address
// (`#f=…`) or from what the overview saved. Loaded with a dynamic import.

import { strings as t } from './strings-events.js';
import { RoomSocket } from './socket.js';
import { identityToken } from './store.js';
import { el } from './view.js';
import { absolute, eventForPage, facilitatorSecret, groupCode, reloadOnNewLink } from './overview.js';

/** Renders the join cards of `event` into `main`. */
export async function renderCards(main, event) {
  const connection = document.getElementById('connection');
  const skip = document.querySelector('.skip');
  if (connection) connection.hidden = true;
  if (skip) skip.hidden = true;
  reloadOnNewLink();
  const secret = facilitatorSecret(event);
  const ev = await eventForPage(main, event, secret, () => renderCards(main, event));
  if (!ev) return;

  document.title = `${t.cardsTitle(ev.title)} – Bothy`;
  const host = location.host;
  const cards = ev.rooms.map((room) => {
    const prompt = el('p', { class: 'card-prompt', dir: 'auto', text: room.prompt ?? '' });
    if (room.prompt == null) fillPrompt(room.room, secret, prompt);
    const link = absolute(room.link);
    return el('li', { class: 'join-card' },
      el('article', { 'aria-labelledby': `card-${room.room}-h` },
        el('h2', { id: `card-${room.room}-h`, dir: 'auto', text: room.name }),
        prompt,
        el('p', { class: 'card-hint', text: t.goTo(host) }),
        el('p', { class: 'card-code' }, el('span', { class: 'visually-hidden', text: `${t.joinCode}: ` }), groupCode(room.code)),
        el('img', { class: 'card-qr', src: room.qr, alt: t.qrAlt(room.name), width: '256', height: '256' }),
        el('p', { class: 'card-scan', text: t.orScan }),
        el('p', { class: 'card-link', text: link })));
  });
  main.replaceChildren(
    el('div', { class: 'cards-top' },
      el('h1', { tabindex: '-1', dir: 'auto', text: t.cardsTitle(ev.title) }),
      el('p', { text: t.cardsIntro }),
      el('p', {},
        el('button', { type: 'button', text: t.print, onclick: () => window.print() }),
        ' ',
        el('a', { class: 'ev-button-link', href: `/e/${ev.event}`, text: t.backToOverview }))),
    el('ul', { class: 'join-cards' }, ...cards));
}

/**
 * The event's answer has no prompts (a prompt may change; the board has the current one), so
 * each card asks its room once over a facilitator connection, then hangs up.
 */
function fillPrompt(room, secret, node) {
  const socket = new RoomSocket(room, {
    join: () => ({ type: 'join', version: 1, token: identityToken(), last_seq: null, name: null, facilitator: secret }),
    onMessage(msg) {
      if (msg.type !== 'welcome' && msg.type !== 'sync') return;
      if (msg.board?.prompt != null) node.textContent = msg.board.prompt;
      socket.stopped = true;
      const ws = socket.ws;
      socket.ws = null;
      ws?.close(1000);
    },
    onStatus() {},
    onFatal() {},
  });
  socket.connect();
}
