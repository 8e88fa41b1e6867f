// A minimal client for the live board core: create a room, join it, post notes and see
// everyone's notes live. The full client (views, themes, moving, offline queue) builds on this.
// User text is only ever set with textContent.

const main = document.getElementById('main');

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

function identityToken() {
  let token = localStorage.getItem('bothy.token');
  if (!token) {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    token = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    localStorage.setItem('bothy.token', token);
  }
  return token;
}

function showHome() {
  document.title = 'Bothy: start a board';
  const prompt = el('textarea', { id: 'prompt', rows: '2', maxlength: '300' });
  const error = el('p', { role: 'alert' });
  const form = el('form', {},
    el('label', { for: 'prompt', text: 'What question should people answer?' }), prompt,
    el('button', { type: 'submit', text: 'Start a board' }), error);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const res = await fetch('/api/rooms', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ prompt: prompt.value }),
    });
    const body = await res.json();
    if (res.ok) location.assign(body.path);
    else error.textContent = body.error;
  });
  main.replaceChildren(el('h1', { text: 'Start a board' }), form);
}

function showBoard(room) {
  const heading = el('h1', { text: 'Loading the board…' });
  const status = el('p', { id: 'status', role: 'status', text: 'Connecting…' });
  const text = el('textarea', { id: 'note-text', rows: '3' });
  const form = el('form', {},
    el('label', { for: 'note-text', text: 'Your note' }), text,
    el('button', { type: 'submit', text: 'Post' }));
  const list = el('ul', { class: 'notes', 'aria-label': 'Notes' });
  main.replaceChildren(heading, status, form, list);

  const notes = new Map();
  let seq = null;
  let socket = null;
  let counter = 0;

  function render() {
    list.replaceChildren(...[...notes.values()].map((n) =>
      el('li', { class: 'note', dir: 'auto' }, n.text, el('small', { text: n.author ?? 'Anonymous' }))));
  }

  function apply(op, created, author) {
    if (op.kind === 'create_note') notes.set(created, { text: op.text, author });
    else if (op.kind === 'edit_note' && notes.has(op.note)) notes.get(op.note).text = op.text;
    else if (op.kind === 'delete_note') notes.delete(op.note);
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    socket = new WebSocket(`${scheme}//${location.host}/ws/${encodeURIComponent(room)}`);
    socket.addEventListener('open', () => {
      socket.send(JSON.stringify({ type: 'join', version: 1, token: identityToken(), last_seq: seq }));
    });
    socket.addEventListener('message', (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === 'welcome') {
        if (msg.board) {
          heading.textContent = msg.board.prompt;
          document.title = `${msg.board.prompt} – Bothy`;
          notes.clear();
          for (const n of msg.board.notes) notes.set(n.id, n);
        }
        seq = msg.seq;
        status.textContent = 'Connected';
      } else if (msg.type === 'applied') {
        if (msg.seq > seq) { apply(msg.op, msg.created, msg.author); seq = msg.seq; }
      } else if (msg.type === 'rejected' || msg.type === 'read_only' || msg.type === 'error') {
        status.textContent = msg.message;
      }
      render();
    });
    socket.addEventListener('close', (e) => {
      if (e.code === 4004) { status.textContent = 'There is no board at this address.'; return; }
      status.textContent = 'Reconnecting…';
      setTimeout(connect, 1000);
    });
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (!text.value.trim() || socket?.readyState !== WebSocket.OPEN) return;
    counter += 1;
    const op = { kind: 'create_note', text: text.value, colour: 'yellow', x: 100, y: 100 };
    socket.send(JSON.stringify({ type: 'op', op_id: `${Date.now().toString(36)}-${counter}`, op }));
    text.value = '';
  });
  connect();
}

const match = location.pathname.match(/^\/r\/([a-z0-9_-]{4,32})$/);
if (match) showBoard(match[1]);
else showHome();
