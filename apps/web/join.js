// The participant's side of the seeds' call sequence in the browser: join,
// fetch the manifest, download each resource, decrypt it with WebCrypto
// (AES-128-GCM) and inflate it (zlib) in memory, and show it in the page:
// images drawn from blob: URLs of the decrypted bytes, PDFs in the
// browser's own viewer from the same, text as text. Keys and slides live
// only in these variables: nothing is written to storage, and no download
// link is offered (seed 000: not stored on the participant's disk).
'use strict';

const status = (text) => { document.getElementById('status').textContent = text; };

// Why a join did not go through, in words (the server's message first).
const WORDS = {
  'need-pin': () => 'This meeting needs a PIN: enter it and join again.',
  'bad-pin': () => 'That PIN is not right.',
  'too-many-attempts': (j) => 'Too many wrong PINs from here: try again in ' +
                              j.retry_after + ' seconds.',
  'refused': () => 'A Host did not let you in.',
  'meeting-ended': () => 'This meeting has ended.',
  404: () => 'No meeting has that invitation: check the URI and the key.',
  429: () => 'Too many attempts from here: wait a little and try again.',
};

function refusal(j, httpStatus) {
  const words = WORDS[j.outcome] || WORDS[httpStatus];
  return j.message || (words ? words(j) : 'Refused (' + (j.outcome || httpStatus) + ').');
}

function form(fields) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) if (v) p.append(k, v);
  return p;
}

function b64(s) {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

async function decrypt(stored, keyBytes) {
  const magic = String.fromCharCode(...stored.slice(0, 4));
  if (magic !== 'GHS1') throw new Error('not a gatehouse resource');
  const key = await crypto.subtle.importKey('raw', keyBytes, 'AES-GCM', false, ['decrypt']);
  const plain = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: stored.slice(4, 16) }, key,
                                            stored.slice(16));
  return inflate(new Uint8Array(plain));
}

// What the decrypted bytes are, by their first bytes (the server's name
// decides nothing). SVG is shown as text: as an image it would still be a
// document of the server's making.
function sniff(b) {
  const starts = (...sig) => sig.every((v, i) => b[i] === v);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && String.fromCharCode(...b.slice(8, 12)) === 'WEBP') {
    return 'image/webp';
  }
  if (starts(0x25, 0x50, 0x44, 0x46, 0x2d)) return 'application/pdf';
  for (const c of b.slice(0, 4096)) {
    if (c < 0x09 || (c > 0x0d && c < 0x20) || c === 0x7f) return 'application/octet-stream';
  }
  return 'text/plain';
}

const TEXT_SHOWN = 65536;

// The slide itself, rendered from memory.
async function render(plain, name) {
  const type = sniff(plain);
  const fig = document.createElement('figure');
  fig.className = 'slide';
  fig.dataset.name = name;
  fig.dataset.type = type;
  if (type.startsWith('image/')) {
    const img = document.createElement('img');
    img.alt = name;
    img.src = URL.createObjectURL(new Blob([plain], { type }));
    fig.append(img);
    await img.decode().catch(() => { fig.dataset.type = 'broken-image'; });
  } else if (type === 'application/pdf') {
    const e = document.createElement('embed');
    e.type = type;
    e.src = URL.createObjectURL(new Blob([plain], { type }));
    fig.append(e);
  } else if (type === 'application/octet-stream') {
    const p = document.createElement('p');
    p.textContent = 'Not an image, PDF or text: not shown.';
    fig.append(p);
  } else {
    const pre = document.createElement('pre');
    pre.textContent = new TextDecoder().decode(plain.slice(0, TEXT_SHOWN)) +
                      (plain.length > TEXT_SHOWN ? '\n…' : '');
    fig.append(pre);
  }
  return fig;
}

async function join(fields) {
  // The Virtual Reception page asks for the room's name instead of the invitation.
  const path = fields.alias ? '/api/v1/meetings/reception' : '/api/v1/meetings/join';
  let r = await fetch(path, { method: 'POST', body: form(fields), credentials: 'same-origin' });
  let j = await r.json();
  if (j.outcome === 'need-sso') {
    status('Sign in with your identity provider…');
    window.location.assign(j.login + '?RelayState=' + encodeURIComponent('/join'));
    return null;
  }
  while (j.outcome === 'waiting-room') {
    status('Waiting for a Host to admit you…');
    await new Promise((ok) => setTimeout(ok, 1000));
    r = await fetch('/api/v1/meetings/waiting/' + (j.waiting || fields.waiting));
    fields.waiting = fields.waiting || j.waiting;
    j = await r.json();
  }
  if (j.outcome !== 'joined') {
    status(refusal(j, r.status));
    document.body.dataset.done = 'refused:' + (j.outcome || r.status);
    return null;
  }
  return j;
}

async function run(ev) {
  ev.preventDefault();
  const get = (id) => (document.getElementById(id) ? document.getElementById(id).value.trim() : '');
  const list = document.getElementById('slides');
  list.replaceChildren();
  status('Joining…');
  const j = await join({ uri: get('uri'), key: get('key'), alias: get('alias'), pin: get('pin'),
                         name: get('name'), client: 'web' });
  if (!j) return;
  const auth = { Authorization: 'Bearer ' + j.token };
  const m = await (await fetch('/api/v1/meetings/manifest', { headers: auth })).json();
  status('Joined as ' + j.role + ' (' + j.display_name + '); ' + m.resources.length +
         ' resource(s)');
  let ok = 0;
  for (const res of m.resources) {
    const li = document.createElement('li');
    list.append(li);
    try {
      const stored = new Uint8Array(await (await fetch(res.url, { headers: auth })).arrayBuffer());
      const plain = await decrypt(stored, b64(res.key));
      const digest = hex(await crypto.subtle.digest('SHA-256', plain));
      const title = document.createElement('strong');
      title.textContent = res.name;
      li.append(title, ' ' + plain.length + ' bytes, sha256 ');
      const d = document.createElement('span');
      d.className = 'sha256';
      d.dataset.name = res.name;
      d.textContent = digest;
      li.append(d, await render(plain, res.name));
      ok++;
    } catch (e) {
      li.className = 'failed';
      li.textContent = res.name + ': cannot decrypt (' + e.name + ')';
    }
  }
  document.body.dataset.done = String(ok) + '/' + m.resources.length;
}

document.getElementById('join').addEventListener('submit', (ev) => {
  run(ev).catch((e) => status('Failed: ' + e.message));
});
