// The administration page: who is signed in, the version, and live
// statistics every 2 s from the same JSON the API serves. Everything shown
// goes in through textContent, never as HTML. Every control is shown; those
// the signed-in role may not use are disabled and say why (the server
// decides again on every request, whatever the page shows).
'use strict';

let me = null;
let version = null;

// What each role may do, as the server decides it (webui_allowed): the
// page shows every control and disables, with the reason, those the
// signed-in role may not use, instead of hiding them without a word.
const MAY = { operator: ['operator', 'admin'], admin: ['admin'], users: ['admin', 'user-admin'] };

function may(need) { return !!me && MAY[need].includes(me.role); }

function whyNot(need) {
  const who = need === 'admin' ? 'Admins only' : need === 'users' ? 'User admins and admins only'
    : 'Operators and admins only';
  return who + ': you are ' + (me ? me.role : 'signed out') + '.';
}

// node, disabled with the reason when the role may not use it.
function gate(node, need) {
  if (!may(need)) {
    node.disabled = true;
    node.title = whyNot(need);
    node.classList.add('not-allowed');
  }
  return node;
}

// A whole form or box the role may not use: its controls disabled and a
// note that says why, once.
function gateBox(box, need) {
  box.hidden = false;
  if (may(need)) return false;
  for (const c of box.querySelectorAll('input, select, textarea, button')) gate(c, need);
  if (!box.querySelector(':scope > .why-not')) {
    const p = el('p', whyNot(need), 'why-not');
    box.prepend(p);
  }
  return true;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

// background: the page's own polling, marked so the server does not count
// it as the person's activity (it must not keep an untouched tab signed in).
async function api(path, opts, background) {
  const o = Object.assign({ credentials: 'same-origin' }, opts || {});
  if (background) o.headers = Object.assign({ 'X-GH-Background': '1' }, o.headers || {});
  const r = await fetch(path, o);
  if (r.status === 401) {
    window.location.assign('/login?signed-out=' + (background ? 'idle' : 'expired'));
    throw new Error('signed out');
  }
  return r;
}

// A state-changing request (the CSRF token), and one that changes the
// configuration (also If-Match: the version this page last read).
async function post(path, body, extra) {
  return api(path, { method: 'POST', body,
                     headers: Object.assign({ 'X-CSRF-Token': me.csrf }, extra || {}) });
}

// opened: the version an editor was opened with. An editor must send that
// one, not the page's latest: the page refreshes its version after every
// action, and a stale editor sending the latest would overwrite a change
// made meanwhile without the server ever seeing it was stale.
async function change(path, body, extra, opened) {
  return post(path, body, Object.assign({ 'If-Match': '"' + (opened || version) + '"' },
                                        extra || {}));
}

// The version a GET answered with (every API GET carries it as ETag).
function versionOf(r) {
  return (r.headers.get('ETag') || '').replace(/"/g, '') || version;
}

// Which rule of a set decides a pasted request, as one line of text.
async function ruleVerdict(set, request) {
  const r = await post('/api/v1/rules/test', new URLSearchParams({ set, request }));
  const j = await r.json();
  if (!r.ok) return 'Refused: ' + j.error;
  return (j.decided_by ? 'rule ' + j.decided_by + ': ' + j.action +
                         (j.status ? ' (' + j.status + ')' : '') : 'no rule decides: it passes') +
    (j.logged.length ? '; logged by ' + j.logged.join(', ') : '');
}

// A real server's state (up, drain, maint) or weight, written back to the config.
async function serverChange(svc, srv, what, value) {
  const r = await change('/api/v1/servers/' + encodeURIComponent(svc) + '/' +
                         encodeURIComponent(srv) + '/' + what,
                         new URLSearchParams({ [what]: value }));
  const j = await r.json();
  document.getElementById('message').textContent = r.ok
    ? srv + ': ' + (what === 'weight' ? 'weight ' : '') + value + ' (configuration ' + j.version + ')'
    : 'Refused: ' + j.error;
  await loadConfigVersion();
  await refresh();
}

let systemShown = false;

// Which configuration runs, and whether the file holds another one (a hand
// edit whose reload was refused): the running one is what serves traffic.
function showRunning(j) {
  const p = document.getElementById('running');
  const f = j.reload_failed;
  if (j.running_version && j.version !== j.running_version) {
    p.className = 'running-stale';
    // The reason belongs to the version it was given for: a file edited
    // again since then has not been tried yet.
    p.textContent = 'The file ' + j.path + ' holds version ' + j.version + ', which is NOT ' +
      'running: ' + (f && f.version === j.version
        ? 'its reload was refused at ' + new Date(f.time * 1000).toLocaleString() + ': ' + f.reason
        : 'it has not been reloaded yet') +
      '. Version ' + j.running_version + ' keeps running.';
  } else {
    p.className = 'running-ok';
    p.textContent = 'Running configuration version ' + j.running_version +
      (j.running_version === j.version ? ' (as in ' + j.path + ')' : '');
  }
}

async function loadConfigVersion(background) {
  const r = await api('/api/v1/config', undefined, background);
  if (r.ok) {
    const j = await r.json();
    version = j.version;
    showRunning(j);
  }
  if (systemShown && !background) await loadSystem(); // every change adds a history entry
}

// Request rates from the change of the counters between two polls.
let lastCounts = null;
let lastTime = 0;

function total(req) { return Object.values(req).reduce((a, b) => a + b, 0); }

function rate(key, now, counts, req) {
  counts[key] = total(req);
  if (!lastCounts || !(key in lastCounts) || now <= lastTime) return '-';
  return ((counts[key] - lastCounts[key]) * 1000 / (now - lastTime)).toFixed(1);
}

function health(s) {
  const items = [];
  for (const svc of s.services) {
    const down = svc.servers.filter((x) => x.health !== 'up' || x.state !== 'up');
    const text = svc.name + ': ' + (svc.app ? 'application ' + svc.app
      : (svc.servers.length - down.length) + ' of ' + svc.servers.length + ' real servers up' +
        (down.length ? ' (' + down.map((x) => x.name + ' ' +
                                       (x.state !== 'up' ? x.state : x.health)).join(', ') + ')' : ''));
    items.push(el('li', text, down.length && !svc.app ? 'down' : 'up'));
  }
  document.getElementById('health').replaceChildren(...items);
}

// Sets a cell's text only when it changed: an unchanged cell is not
// touched, so selection, focus and hover survive the poll.
function setText(td, text, cls) {
  const t = String(text);
  if (td.textContent !== t) td.textContent = t;
  if (cls !== undefined && td.className !== cls) td.className = cls;
}

// The operate cell of a real server: rebuilt only when the server's state
// changes (the buttons depend on it), never while its weight box is being
// edited (focused, or holding a value not yet set).
function opsCell(td, svc, srv) {
  const key = srv.state + '/' + (me ? me.role : '') + '/' + (version ? 1 : 0);
  const w = td.querySelector('input.weight');
  if (td.dataset.key === key && w) {
    if (document.activeElement !== w && w.dataset.dirty !== '1') w.value = String(srv.weight);
    return;
  }
  if (td.dataset.key === key && !w && td.childNodes.length) return;
  if (w && (document.activeElement === w || w.dataset.dirty === '1')) return;
  td.dataset.key = key;
  const parts = [];
  // A built-in application's internal server is not in the config to operate.
  if (me && version && !svc.app) {
    for (const st of ['up', 'drain', 'maint']) {
      if (st === srv.state) continue;
      const b = el('button', st === 'up' ? 'enable' : st === 'maint' ? 'disable' : 'drain');
      b.dataset.action = st;
      b.addEventListener('click', () => serverChange(svc.name, srv.name, 'state', st));
      parts.push(gate(b, 'operator'));
    }
  }
  if (me && version && !svc.app) {
    const box = el('input');
    box.type = 'number';
    box.min = '1';
    box.max = '256'; // the configuration's range
    box.value = String(srv.weight);
    box.className = 'weight';
    box.addEventListener('input', () => { box.dataset.dirty = '1'; });
    const set = el('button', 'set weight');
    set.dataset.action = 'weight';
    set.addEventListener('click', () => {
      box.dataset.dirty = '';
      serverChange(svc.name, srv.name, 'weight', box.value);
    });
    parts.push(gate(box, 'admin'), gate(set, 'admin'));
  }
  td.replaceChildren(...parts);
}

// One row per service and per real server, found again by its key at every
// poll and updated cell by cell; rows come and go only with the services.
function statsRow(tb, key, cls, ncells) {
  let tr = tb.querySelector('tr[data-key="' + CSS.escape(key) + '"]');
  if (!tr) {
    tr = el('tr', undefined, cls);
    tr.dataset.key = key;
    for (let i = 0; i < ncells; i++) tr.append(el('td'));
  }
  return tr;
}

let refreshes = 0;

async function refresh() {
  const r = await api('/api/v1/stats', undefined, true);
  const s = await r.json();
  const now = Date.now();
  const counts = {};
  const tb = document.querySelector('#stats tbody');
  const rows = [];
  const errs = (q) => q['4xx'] + ' / ' + q['5xx'];
  health(s);
  serviceStatus(s);
  for (const svc of s.services) {
    const tr = statsRow(tb, 's/' + svc.name, 'service', 10);
    const c = tr.children;
    setText(c[0], svc.name + ' (' + svc.listen + ')');
    setText(c[4], svc.connections);
    setText(c[5], rate('s/' + svc.name, now, counts, svc.requests));
    setText(c[6], svc.requests['2xx']);
    setText(c[7], errs(svc.requests));
    setText(c[8], svc.bytes_in + ' / ' + svc.bytes_out);
    rows.push(tr);
    for (const srv of svc.servers) {
      const t = statsRow(tb, 'r/' + svc.name + '/' + srv.name, '', 10);
      t.dataset.server = svc.name + '/' + srv.name;
      const d = t.children;
      setText(d[0], '  ' + srv.name + ' ' + srv.address + ' (weight ' + srv.weight + ')', 'name');
      setText(d[1], srv.state, 'state');
      setText(d[2], srv.health, srv.health);
      setText(d[3], srv.last_check);
      setText(d[4], srv.connections);
      setText(d[5], rate('r/' + svc.name + '/' + srv.name, now, counts, srv.requests), 'rate');
      setText(d[6], srv.requests['2xx']);
      setText(d[7], errs(srv.requests));
      setText(d[8], srv.bytes_in + ' / ' + srv.bytes_out);
      if (d[9].className !== 'ops') d[9].className = 'ops';
      opsCell(d[9], svc, srv);
      rows.push(t);
    }
  }
  lastCounts = counts;
  lastTime = now;
  // Keep the rows in the order of the stats; move only what is out of place.
  for (const old of [...tb.children]) if (!rows.includes(old)) old.remove();
  rows.forEach((tr, i) => { if (tb.children[i] !== tr) tb.insertBefore(tr, tb.children[i] || null); });
  document.body.dataset.refreshes = String(++refreshes);
}

// --- graphs: SVG drawn here from /api/v1/stats/history (no library) ---
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

// Per-second rates (or a ratio) between consecutive cumulative samples; a
// counter that went back (a reload started it anew) counts from zero.
function deltas(points, idx, per) {
  const out = [];
  for (let i = 1; i < points.length; i++) {
    const dt = points[i][0] - points[i - 1][0];
    let d = points[i][idx] - points[i - 1][idx];
    if (d < 0) d = points[i][idx];
    if (per === 'second') out.push([points[i][0], dt > 0 ? d / dt : 0]);
    else {
      let n = points[i][1] - points[i - 1][1];
      if (n < 0) n = points[i][1];
      out.push([points[i][0], n > 0 ? d / n : 0]);
    }
  }
  return out;
}

// The x axis: the last hour, or less while there is less history (a
// minute at least), so a fresh start is not a dot at the right edge.
function span(points) {
  const now = Date.now() / 1000;
  return points.length ? Math.max(60, Math.min(3600, now - points[0][0])) : 3600;
}

// One small line chart: the window on x, 0..max on y, labelled.
function chart(title, unit, values, cls, win) {
  const W = 300;
  const H = 90;
  const now = Date.now() / 1000;
  const max = Math.max(1e-9, ...values.map((v) => v[1]));
  const fig = el('figure', undefined, 'chart ' + cls);
  const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img' });
  s.append(svg('rect', { x: 0, y: 0, width: W, height: H, class: 'frame' }));
  const pts = values.map(([t, v]) => [(W * (1 - (now - t) / win)).toFixed(1),
                                     (H - 4 - (H - 8) * v / max).toFixed(1)].join(','));
  if (pts.length) s.append(svg('polyline', { points: pts.join(' '), class: 'line' }));
  const last = values.length ? values[values.length - 1][1] : 0;
  const cap = el('figcaption', title + ': ' + (Math.round(last * 100) / 100) + ' ' + unit +
                 ' now, peak ' + (Math.round(max * 100) / 100) + ' (last ' +
                 Math.round(win / 60) + ' min)');
  fig.dataset.points = String(values.length);
  fig.dataset.peak = String(max);
  fig.append(s, cap);
  return fig;
}

// Health over the window: a bar per sample, green up, red down.
function timeline(points, win) {
  const W = 300;
  const now = Date.now() / 1000;
  const s = svg('svg', { viewBox: '0 0 ' + W + ' 10', width: W, height: 10, class: 'timeline' });
  for (let i = 0; i < points.length; i++) {
    const x = W * (1 - (now - points[i][0]) / win);
    const w = Math.max(1, W * 5 / win);
    s.append(svg('rect', { x: x.toFixed(1), y: 0, width: w.toFixed(1), height: 10,
                           class: points[i][4] === 1 ? 'up' : 'down' }));
  }
  return s;
}

async function loadGraphs() {
  const r = await api('/api/v1/stats/history', undefined, true);
  if (!r.ok) return;
  const j = await r.json();
  const box = document.getElementById('graphs');
  const parts = [];
  for (const sv of j.series.filter((x) => x.server === '')) {
    const d = el('div', undefined, 'service-graphs');
    d.dataset.service = sv.service;
    d.append(el('h3', sv.service));
    const row = el('div', undefined, 'charts');
    const win = span(sv.points);
    row.append(chart('requests', '/s', deltas(sv.points, 1, 'second'), 'requests', win),
               chart('errors (5xx)', '/s', deltas(sv.points, 2, 'second'), 'errors', win),
               chart('mean latency', 'ms', deltas(sv.points, 3, 'request'), 'latency', win));
    d.append(row);
    for (const srv of j.series.filter((x) => x.service === sv.service && x.server !== '')) {
      const line = el('div', undefined, 'health-line');
      line.dataset.server = srv.server;
      line.append(el('span', srv.server + ' '), timeline(srv.points, win));
      d.append(line);
    }
    parts.push(d);
  }
  box.replaceChildren(...parts);
  document.body.dataset.graphs = String(parts.length);
}

// Certificates on a year's axis: a bar from now to each one's not-after.
function certTimeline(certs) {
  const W = 600;
  const s = svg('svg', { viewBox: '0 0 ' + (W + 160) + ' ' + (certs.length * 18 + 20),
                         width: W + 160, height: certs.length * 18 + 20, role: 'img' });
  certs.forEach((c, i) => {
    const days = Math.max(0, Math.min(365, Number(c.days_left)));
    const t = svg('text', { x: 0, y: i * 18 + 13, class: 'label' });
    t.textContent = c.name;
    s.append(t, svg('rect', { x: 150, y: i * 18 + 3, width: (W * days / 365).toFixed(1),
                              height: 12, class: Number(c.days_left) <= 30 ? 'soon' : 'ok' }));
    const d = svg('text', { x: 150 + W * days / 365 + 4, y: i * 18 + 13, class: 'label' });
    d.textContent = c.days_left + ' days';
    s.append(d);
  });
  document.getElementById('cert-timeline').replaceChildren(s);
}

// Idle sign-out, as the server counts it: background polls do not count,
// a person's requests do (a click or a key in the page sends one at most
// every 15 s). Before the limit the page says so and offers to stay.
let lastPing = 0;

function activity() {
  if (Date.now() - lastPing < 15000) return;
  lastPing = Date.now();
  api('/api/v1/session').catch(() => {});
}

async function watchSession() {
  const r = await api('/api/v1/session', undefined, true);
  const j = await r.json();
  const warn = document.getElementById('idle-warning');
  const ahead = Math.min(60, Math.floor(j.idle / 2));
  if (j.idle_left > 0 && j.idle_left <= ahead) {
    document.getElementById('idle-text').textContent =
      'You will be signed out in ' + j.idle_left + ' s for inactivity.';
    warn.hidden = false;
  } else {
    warn.hidden = true;
  }
}

let editing = null; // null: adding; else the service name
let editorBase = ''; // the block as it was when the editor opened
let editorVersion = null; // the configuration version it was read at

function openEditor(name, text, ver) {
  editing = name;
  editorBase = text;
  editorVersion = ver || version;
  document.getElementById('svc-editor-title').textContent = name ? 'Modify ' + name : 'Add a service';
  document.getElementById('svc-text').value = text;
  document.getElementById('svc-conflict').replaceChildren();
  document.getElementById('svc-conflict').hidden = true;
  document.getElementById('svc-editor').hidden = false;
}

// A save refused as stale: the three texts side by side (the base it was
// opened on, theirs now in the file, yours not saved) and a choice that is
// the admin's to make, never the page's.
function showConflict(theirs, theirsVersion) {
  const mine = document.getElementById('svc-text').value;
  const box = document.getElementById('svc-conflict');
  const pane = (title, text, cls) => {
    const d = el('div', undefined, 'pane ' + cls);
    d.append(el('h3', title), el('pre', text));
    return d;
  };
  const panes = el('div', undefined, 'three-way');
  panes.append(pane('Base: when you opened it (' + editorVersion + ')', editorBase, 'base'),
               pane('Theirs: in the configuration now (' + theirsVersion + ')',
                    theirs === null ? '(the service is gone)' : theirs, 'theirs'),
               pane('Yours: not saved', mine, 'yours'));
  const over = el('button', 'Save mine over theirs');
  over.type = 'button';
  over.dataset.action = 'save-over';
  over.addEventListener('click', () => {
    editorBase = theirs === null ? '' : theirs;
    editorVersion = theirsVersion;
    box.hidden = true;
    document.getElementById('svc-editor').requestSubmit();
  });
  const restart = el('button', 'Start again from theirs');
  restart.type = 'button';
  restart.dataset.action = 'take-theirs';
  restart.addEventListener('click', () => openEditor(editing, theirs === null ? '' : theirs,
                                                     theirsVersion));
  box.replaceChildren(el('p', 'Someone changed the configuration since you opened this editor: ' +
                              'nothing of yours was saved.', 'refused'), panes, over, ' ', restart);
  box.hidden = false;
}

async function saveService(ev) {
  ev.preventDefault();
  const url = editing ? '/api/v1/services/' + encodeURIComponent(editing) + '/block'
                      : '/api/v1/services';
  const r = await change(url, document.getElementById('svc-text').value,
                         { 'Content-Type': 'text/plain' }, editorVersion);
  const j = await r.json();
  document.getElementById('svc-message').textContent =
    r.ok ? 'Saved (configuration ' + j.version + ')' : 'Refused: ' + j.error;
  if (r.ok) document.getElementById('svc-editor').hidden = true;
  if (r.status === 412) {
    let theirs = null;
    let ver = j.version;
    if (editing) {
      const rr = await api('/api/v1/services/' + encodeURIComponent(editing) + '/block');
      if (rr.ok) { theirs = (await rr.json()).block; ver = versionOf(rr); }
    } else {
      theirs = '';
    }
    showConflict(theirs, ver);
  }
  await loadConfigVersion();
  await loadInventory();
}

async function deleteService(name) {
  if (!window.confirm('Delete the service ' + name + '?')) return;
  const r = await change('/api/v1/services/' + encodeURIComponent(name) + '/delete', '');
  const j = await r.json();
  document.getElementById('svc-message').textContent =
    r.ok ? name + ' deleted' : 'Refused: ' + j.error;
  await loadConfigVersion();
  await loadInventory();
}

async function testRule(ev) {
  ev.preventDefault();
  document.getElementById('rt-result').textContent =
    await ruleVerdict(document.getElementById('rt-set').value.trim(),
                      document.getElementById('rt-req').value);
}

/* One row of the services table. */
function serviceRow(sv) {
  const tr = el('tr');
  tr.dataset.service = sv.name;
  const target = sv.app ? 'app ' + sv.app
    : sv.servers.map((x) => x.name + ' ' + x.address + ' w' + x.weight +
                           (x.state !== 'up' ? ' ' + x.state : '')).join(', ');
  const chk = sv.check ? sv.check.url + ' every ' + sv.check.interval_ms / 1000 + ' s' : '-';
  const edit = el('td', undefined, 'admin-col');
  {
    const m = el('button', 'modify');
    m.dataset.action = 'modify';
    m.addEventListener('click', () => openServiceForm(sv.name));
    const t = el('button', 'edit text');
    t.dataset.action = 'edit-text';
    t.addEventListener('click', async () => {
      const rr = await api('/api/v1/services/' + encodeURIComponent(sv.name) + '/block');
      if (rr.ok) openEditor(sv.name, (await rr.json()).block, versionOf(rr));
    });
    const d = el('button', 'delete');
    d.dataset.action = 'delete';
    d.addEventListener('click', () => deleteService(sv.name));
    edit.append(gate(m, 'admin'), gate(t, 'admin'), gate(d, 'admin'));
  }
  const status = el('td', sv.enabled ? '' : 'off', 'svc-status');
  const pool = el('td', sv.app ? '-' : '', 'svc-pool');
  const sw = el('td', undefined, 'svc-switch');
  {
    const box = el('input');
    box.type = 'checkbox';
    box.checked = sv.enabled;
    box.dataset.action = 'enable';
    box.setAttribute('aria-label', (sv.enabled ? 'Turn off ' : 'Turn on ') + sv.name);
    box.addEventListener('change', () => setEnabled(sv.name, box.checked, box));
    gate(box, 'admin');
    // The page itself comes through an admin service: switching it off from
    // here would end this session's way back.
    if (sv.app === 'admin' && sv.enabled && !box.disabled) {
      box.disabled = true;
      box.title = 'This page is served through an app admin service: turn it off in the file.';
      box.classList.add('not-allowed');
    }
    sw.append(box);
  }
  tr.append(el('td', sv.name), status, pool, sw, el('td', sv.listen),
            el('td', sv.certificates.join(' ')),
            el('td', target), el('td', sv.scheduler),
            el('td', sv.persistence === 'off' ? '-' : sv.persistence + ' ' +
               sv.persistence_timeout_ms / 60000 + ' min'),
            el('td', sv.allowed_hosts.join(' ')), el('td', sv.allowed_dirs.join(' ')),
            el('td', chk), edit);
  return tr;
}

// A service switched on or off: its `enabled` directive, by the block API
// (the version the page read: a stale one is refused with 412).
async function setEnabled(name, on, box) {
  box.disabled = true;
  const r = await change('/api/v1/blocks/service/' + encodeURIComponent(name),
                         new URLSearchParams({ enabled: on ? 'on' : 'off' }));
  const j = await r.json();
  document.getElementById('svc-message').textContent = r.ok
    ? name + ' turned ' + (on ? 'on' : 'off') + ' (configuration ' + j.version + ')'
    : 'Refused: ' + j.error;
  await loadConfigVersion();
  await loadInventory();
}

// Status and pool health of each service row, from the live statistics:
// cells change, rows stay.
function serviceStatus(s) {
  for (const svc of s.services) {
    const tr = document.querySelector('#svc-table tr[data-service="' + CSS.escape(svc.name) + '"]');
    if (!tr) continue;
    const up = svc.servers.filter((x) => x.state === 'up' && x.health === 'up').length;
    let st;
    if (!svc.enabled) st = 'off';
    else if (!svc.listening) st = 'not listening';
    else if (!svc.app && up === 0) st = 'down: no real server up';
    else if (!svc.app && up < svc.servers.length) st = 'degraded';
    else st = 'up';
    setText(tr.querySelector('.svc-status'), st, 'svc-status st-' + st.split(':')[0].replace(/ /g, '-'));
    if (!svc.app) setText(tr.querySelector('.svc-pool'), up + ' of ' + svc.servers.length + ' up');
  }
}

async function loadInventory() {
  let r = await api('/api/v1/services');
  if (r.ok) {
    const j = await r.json();
    // Services are shown by listener: the ones sharing an address are
    // chosen among by the TLS server name, then Host.
    const order = [];
    for (const sv of j.services) if (!order.includes(sv.listen)) order.push(sv.listen);
    const byListener = order.map((l) => j.services.filter((sv) => sv.listen === l));
    const rows = [];
    for (const group of byListener) {
      const head = el('tr', undefined, 'listener');
      head.dataset.listener = group[0].listen;
      const td = el('th', 'listener ' + group[0].listen + (group.length > 1
        ? ': ' + group.length + ' services, chosen by the TLS server name, then Host' : ''));
      td.colSpan = 13;
      head.append(td);
      rows.push(head, ...group.map(serviceRow));
    }
    document.querySelector('#svc-table tbody').replaceChildren(...rows);
  }
  r = await api('/api/v1/certificates');
  if (r.ok) {
    const j = await r.json();
    const rows = [];
    const soon = [];
    for (const c of j.certificates) {
      const tr = el('tr');
      tr.dataset.certificate = c.name;
      tr.append(el('td', c.name), el('td', c.subject), el('td', c.sans), el('td', c.issuer),
                el('td', c.key), el('td', c.not_after), el('td', c.days_left));
      rows.push(tr);
      if (Number(c.days_left) <= 30) soon.push(el('li', c.name + ': ' + c.days_left + ' days'));
    }
    document.querySelector('#cert-table tbody').replaceChildren(...rows);
    certTimeline(j.certificates);
    document.getElementById('expiring').replaceChildren(...(soon.length ? soon : [el('li', 'none')]));
  }
}

async function loadIdps() {
  const r = await api('/api/v1/identity-providers');
  if (!r.ok) return;
  const j = await r.json();
  const rows = j.identity_providers.map((p) => {
    const tr = el('tr');
    tr.dataset.idp = p.uuid;
    const a = el('a', 'Download service metadata');
    a.href = '/api/v1/identity-providers/' + encodeURIComponent(p.uuid) + '/metadata';
    a.className = 'sp-metadata';
    const td = el('td');
    td.append(a);
    tr.append(el('td', p.name), el('td', p.uuid), el('td', p.idp_entity_id),
              el('td', p.idp_sso_url), el('td', p.display_name_attribute), td,
              editCell('identity-provider', p.name, openIdpForm, 'idp-message', loadIdps));
    return tr;
  });
  document.querySelector('#idp-table tbody').replaceChildren(...rows);
  document.querySelector('#group-table tbody').replaceChildren(...j.groups.map((g) => {
    const tr = el('tr');
    tr.dataset.group = g.name;
    tr.append(el('td', g.name), el('td', g.identity_providers.join(', ')),
              editCell('identity-provider-group', g.name, openGroupForm, 'idp-message', loadIdps));
    return tr;
  }));
}

// modify / delete buttons for a block, for admins (an empty cell otherwise).
function editCell(kind, name, open, msgId, after) {
  const td = el('td', undefined, 'admin-col');
  const m = el('button', 'modify');
  m.dataset.action = 'modify';
  m.addEventListener('click', () => open(name));
  const d = el('button', 'delete');
  d.dataset.action = 'delete';
  d.addEventListener('click', () => deleteBlock(kind, name, msgId, after));
  td.append(gate(m, 'admin'), gate(d, 'admin'));
  return td;
}

async function importIdp(ev) {
  ev.preventDefault();
  const get = (id) => document.getElementById(id).value.trim();
  const file = document.getElementById('idp-file').files[0];
  const q = new URLSearchParams({ name: get('idp-name'), sp_certificate: get('idp-spcert'),
                                  sp_entity_id: get('idp-spentity') });
  const r = await change('/api/v1/identity-providers/import?' + q, await file.text(),
                         { 'Content-Type': 'application/samlmetadata+xml' });
  const j = await r.json();
  document.getElementById('idp-message').textContent =
    r.ok ? ('Imported ' + get('idp-name') + ' (' + j.uuid + ')') : ('Refused: ' + j.error);
  await loadConfigVersion();
  await loadIdps();
}

function meetingMessage(text) {
  document.getElementById('meeting-message').textContent = text;
}

// An API refusal in words: the server's reason, or the status.
async function refusalText(r) {
  try { return 'Refused: ' + (await r.json()).error; } catch (e) { return 'Refused (' + r.status + ')'; }
}

function waitingCell(m) {
  const td = el('td');
  if (!m.waiting.length) td.textContent = '-';
  for (const w of m.waiting) {
    const span = el('span', w.name + ' ', 'waiter');
    {
      for (const [act, done] of [['admit', 'admitted'], ['refuse', 'refused']]) {
        const b = el('button', act);
        b.dataset.action = act;
        b.addEventListener('click', async () => {
          const rr = await post('/api/v1/meetings/' + encodeURIComponent(m.alias) + '/waiting/' +
                                encodeURIComponent(w.id) + '/' + act, '');
          meetingMessage(rr.ok ? (w.name + ': ' + done) : await refusalText(rr));
          await loadMeetings();
        });
        span.append(gate(b, 'operator'));
      }
    }
    td.append(span);
  }
  return td;
}

function participantsCell(m) {
  const td = el('td');
  if (!m.participants.length) td.textContent = '-';
  const ul = el('ul', undefined, 'participants');
  for (const p of m.participants) {
    ul.append(el('li', p.display_name + ' (' + p.role + (p.name_from_idp ? ', from the IdP' : '') +
                       ')'));
  }
  if (m.participants.length) td.append(ul);
  return td;
}

function meetingButton(label, action, fn) {
  const b = el('button', label);
  b.dataset.action = action;
  b.addEventListener('click', () => { fn().catch((e) => meetingMessage(e.message)); });
  return b;
}

let meetingsSeen = '';
let joinUrl = '';

// The live list: polled in the background, drawn again only when what the
// server says changed (a button is never swapped while nothing happened).
async function loadMeetings(background) {
  const r = await api('/api/v1/meetings', undefined, background);
  if (!r.ok) return;
  const text = await r.text();
  if (background && text === meetingsSeen) return;
  meetingsSeen = text;
  const j = JSON.parse(text);
  joinUrl = j.join_url || '';
  const path = (m, act) => '/api/v1/meetings/' + encodeURIComponent(m.alias) + '/' + act;
  const rows = j.meetings.map((m) => {
    const tr = el('tr');
    tr.dataset.meeting = m.alias;
    const ops = el('td', undefined, 'ops');
    {
      if (!m.ended) {
        ops.append(meetingButton('end meeting', 'end', async () => {
          if (!window.confirm('End ' + m.alias + '? Its content and keys are destroyed.')) return;
          const rr = await post(path(m, 'end'), '');
          if (rr.ok) {
            const e = await rr.json();
            meetingMessage(m.alias + ' ended: ' + e.resources_shredded +
                           ' resource(s) shredded, ' + e.waiting_told +
                           ' waiting participant(s) told, every token revoked');
          } else {
            meetingMessage(await refusalText(rr));
          }
          await loadMeetings();
        }));
      } else {
        ops.append(meetingButton('reopen', 'reopen', async () => {
          const rr = await post(path(m, 'reopen'), '');
          meetingMessage(rr.ok ? m.alias + ' reopened: it takes joins again'
                               : await refusalText(rr));
          await loadMeetings();
        }));
      }
      ops.append(meetingButton('reset PIN lockout', 'pin-reset', async () => {
        const rr = await post(path(m, 'pin-reset'), '');
        meetingMessage(rr.ok ? m.alias + ': every source may try PINs again'
                             : await refusalText(rr));
      }));
      for (const b of ops.children) gate(b, 'operator');
    }
    ops.append(gate(meetingButton('modify', 'modify', async () => openMeetingForm(m)), 'admin'));
    tr.append(el('td', m.alias), el('td', m.ended ? 'ended' : 'open', m.ended ? 'down' : 'up'),
              el('td', m.uri),
              el('td', (m.host_pin_set ? 'host' : '-') + ' / ' + (m.guest_pin_set ? 'guest' : '-')),
              el('td', m.authentication), el('td', m.idp_group || '-'),
              el('td', m.other_participants),
              el('td', m.content.map((c) => c.name + ' (' + c.size + ' B)').join(', ') || '-'),
              waitingCell(m), participantsCell(m), ops);
    return tr;
  });
  document.querySelector('#meeting-table tbody').replaceChildren(...rows);
}

// The invitation, shown once: the store keeps only the key's verifier.
function showInvitation(j, pinsSet) {
  const box = document.getElementById('invitation');
  const where = j.join_url || joinUrl || '(the conference service\'s /join page)';
  const mail = 'You are invited to the meeting "' + j.alias + '".\n\n' +
               'Join at ' + where + ' with\n' +
               '  Meeting URI:     ' + j.uri + '\n' +
               '  Conference key:  ' + j.conference_key + '\n' +
               (pinsSet ? '\nThe PIN comes separately.\n' : '');
  const line = (label, value, id) => {
    const p = el('p');
    const code = el('code', value);
    code.id = id;
    const b = el('button', 'copy');
    b.type = 'button';
    b.dataset.copy = id;
    b.addEventListener('click', () => {
      navigator.clipboard.writeText(value).then(() => { b.textContent = 'copied'; },
                                                () => { b.textContent = 'select and copy'; });
    });
    p.append(el('strong', label + ' '), code, ' ', b);
    return p;
  };
  const ta = el('textarea', mail);
  ta.id = 'invitation-mail';
  ta.readOnly = true;
  ta.rows = 8;
  const copyMail = el('button', 'copy the e-mail');
  copyMail.type = 'button';
  copyMail.addEventListener('click', () => { navigator.clipboard.writeText(mail).catch(() => {}); });
  box.replaceChildren(el('h2', 'Invitation for ' + j.alias),
                      el('p', 'Shown once: gatehouse keeps only a verifier of the key.', 'note'),
                      line('Meeting URI', j.uri, 'inv-uri'),
                      line('Conference key', j.conference_key, 'inv-key'), ta, copyMail);
  box.hidden = false;
}

async function createMeeting(ev) {
  ev.preventDefault();
  const get = (id) => document.getElementById(id).value.trim();
  const body = new URLSearchParams({ alias: get('m-alias'), host_pin: get('m-host'),
                                     guest_pin: get('m-guest'), authentication: get('m-auth'),
                                     idp_group: get('m-group'), other_participants: get('m-other') });
  const r = await post('/api/v1/meetings', body);
  if (r.ok) {
    const j = await r.json();
    meetingMessage('Created ' + j.alias);
    showInvitation(j, get('m-host') !== '' || get('m-guest') !== '');
    for (const id of ['m-host', 'm-guest']) document.getElementById(id).value = '';
  } else {
    meetingMessage(await refusalText(r));
  }
  await loadMeetings();
}

async function loadLogs(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams({ limit: '50' });
  for (const [k, id] of [['reason', 'f-reason'], ['host', 'f-host'], ['ip', 'f-ip']]) {
    const v = document.getElementById(id).value.trim();
    if (v) q.append(k, v);
  }
  let r = await api('/api/v1/logs/security?' + q);
  if (r.ok) {
    const rows = (await r.json()).entries.map((e) => {
      const tr = el('tr');
      tr.append(el('td', e.time), el('td', e.service), el('td', e.client), el('td', e.host),
                el('td', e.method + ' ' + e.path), el('td', e.status), el('td', e.reason));
      return tr;
    });
    document.querySelector('#sec-table tbody').replaceChildren(...rows);
  }
  r = await api('/api/v1/logs/security?limit=10');
  if (r.ok) {
    const rows = (await r.json()).entries.reverse().map((e) => {
      const tr = el('tr');
      tr.append(el('td', e.time), el('td', e.service), el('td', e.client),
                el('td', e.method + ' ' + e.path), el('td', e.status), el('td', e.reason));
      return tr;
    });
    document.querySelector('#home-events tbody').replaceChildren(...rows);
  }
  // The audit log is for admins and user admins; others are not asked for it.
  r = me.role === 'admin' || me.role === 'user-admin' ? await api('/api/v1/logs/audit?limit=50')
                                                      : null;
  if (r && r.ok) {
    const rows = (await r.json()).entries.map((e) => {
      const tr = el('tr');
      tr.append(el('td', e.time), el('td', e.user), el('td', e.role), el('td', e.ip),
                el('td', e.action), el('td', e.object), el('td', e.result));
      return tr;
    });
    document.querySelector('#audit-table tbody').replaceChildren(...rows);
  } else {
    document.getElementById('audit-table').hidden = true;
  }
}

function sysMessage(text) { document.getElementById('sys-message').textContent = text; }

// The cluster's appliances and the version each runs (share-config on).
async function loadCluster() {
  const r = await api('/api/v1/cluster');
  if (!r.ok) return;
  const j = await r.json();
  const box = document.getElementById('cluster-box');
  box.hidden = !j.shared;
  if (!j.shared) return;
  document.getElementById('cluster-note').textContent = j.cluster
    ? 'The cluster runs version ' + j.cluster.version + ' (sequence ' + j.cluster.sequence +
      ') of the shared part (each file adds its own part, so the running configuration ' +
      'above has a version of its own); this page is served by ' + j.this + '.'
    : 'The shared store holds no version (or does not answer); this page is served by ' +
      j.this + '.';
  const rows = j.appliances.map((m) => {
    const tr = el('tr');
    tr.dataset.appliance = m.name;
    tr.append(el('td', m.name), el('td', m.running), el('td', String(m.sequence)),
              el('td', m.state, 'state'), el('td', m.why || '-', 'why'));
    return tr;
  });
  document.querySelector('#cluster-table tbody').replaceChildren(...rows);
}

async function loadSystem() {
  await loadCluster();
  let r = await api('/api/v1/config/history');
  if (r.ok) {
    const rows = (await r.json()).versions.map((v) => {
      const tr = el('tr');
      tr.dataset.history = v.id;
      const c = v.change || {};
      const ops = el('td');
      const d = el('button', 'diff');
      d.dataset.action = 'diff';
      d.addEventListener('click', async () => {
        const rr = await api('/api/v1/config/history/' + encodeURIComponent(v.id));
        if (!rr.ok) return;
        const lines = (await rr.json()).diff_to_current;
        showDiff('From version ' + v.version + ' (old, lines marked -) to the running ' +
                 'configuration (now, lines marked +)', lines.join('\n') || '(same as now)');
      });
      ops.append(d);
      {
        const b = el('button', 'roll back');
        b.dataset.action = 'rollback';
        b.addEventListener('click', async () => {
          // What it will change, before it does: now (-) back to that version (+).
          const rr = await api('/api/v1/config/history/' + encodeURIComponent(v.id));
          if (!rr.ok) return;
          const lines = (await rr.json()).diff_to_current.map(
            (l) => (l.startsWith('- ') ? '+ ' : l.startsWith('+ ') ? '- ' : '') + l.slice(2));
          const minus = lines.filter((l) => l.startsWith('- '));
          const plus = lines.filter((l) => l.startsWith('+ '));
          showDiff('Rolling back to version ' + v.version + ' would change the running ' +
                   'configuration (now, -) into (that version, +):',
                   [...minus, ...plus].join('\n') || '(nothing: it is the same as now)',
                   async () => {
                     const rb = await change('/api/v1/config/rollback',
                                             new URLSearchParams({ id: v.id }));
                     const j = await rb.json();
                     sysMessage(rb.ok ? 'Rolled back (configuration ' + j.version + ')'
                                      : 'Refused: ' + j.error);
                     await loadConfigVersion();
                     await loadSystem();
                     await loadInventory();
                   });
        });
        ops.append(gate(b, 'admin'));
      }
      tr.append(el('td', new Date(v.time * 1000).toISOString()),
                el('td', c.user ? c.user + ' (' + c.role + ')' : '-', 'who'),
                el('td', c.action ? c.action + (c.object ? ' ' + c.object : '') : '-', 'label'),
                el('td', c.changed || '-', 'changed'),
                el('td', v.version + (c.new_version ? ' \u2192 ' + c.new_version : ''), 'versions'),
                ops);
      return tr;
    });
    document.querySelector('#hist-table tbody').replaceChildren(...rows);
  }
  if (me.role === 'user-admin') {
    document.getElementById('users-box').hidden = false;
    r = await api('/api/v1/users');
    if (r.ok) {
      const rows = (await r.json()).users.map((u) => {
        const tr = el('tr');
        const ops = el('td');
        for (const act of ['unlock', 'delete']) {
          const b = el('button', act);
          b.addEventListener('click', async () => {
            const pw = document.getElementById('u-me').value;
            const rr = await post('/api/v1/users/' + encodeURIComponent(u.name) + '/' + act,
                                  new URLSearchParams({ current_password: pw }));
            sysMessage(rr.ok ? u.name + ': ' + act + ' done' : 'Refused: ' + (await rr.json()).error);
            await loadSystem();
          });
          ops.append(b);
        }
        tr.append(el('td', u.name), el('td', u.role), el('td', u.locked ? 'locked' : '-'), ops);
        return tr;
      });
      document.querySelector('#user-table tbody').replaceChildren(...rows);
    }
  }
  if (me.role === 'admin' || me.role === 'user-admin') {
    document.getElementById('sessions-box').hidden = false;
    r = await api('/api/v1/sessions');
    if (r.ok) {
      const rows = (await r.json()).sessions.map((x) => {
        const tr = el('tr');
        const b = el('button', 'end');
        b.addEventListener('click', async () => {
          const rr = await post('/api/v1/sessions/' + x.handle + '/end', '');
          sysMessage(rr.ok ? 'session ended' : 'Refused');
          await loadSystem();
        });
        const td = el('td');
        td.append(b);
        tr.append(el('td', x.user), el('td', x.role), el('td', new Date(x.created * 1000).toISOString()),
                  el('td', new Date(x.last_seen * 1000).toISOString()), td);
        return tr;
      });
      document.querySelector('#session-table tbody').replaceChildren(...rows);
    }
  }
  gateBox(document.getElementById('backup-box'), 'admin');
}

// A diff with its direction in words; with confirm, a button that does it.
function showDiff(title, text, confirm) {
  const box = document.getElementById('hist-diff-box');
  const parts = [el('p', title, 'diff-title'), el('pre', text)];
  if (confirm) {
    const go = el('button', 'Roll back now');
    go.dataset.action = 'confirm-rollback';
    go.addEventListener('click', () => { box.replaceChildren(); confirm().catch((e) => sysMessage(e.message)); });
    const no = el('button', 'Cancel');
    no.addEventListener('click', () => box.replaceChildren());
    parts.push(go, ' ', no);
  }
  box.replaceChildren(...parts);
}

async function makeBackup(ev) {
  ev.preventDefault();
  const r = await post('/api/v1/system/backup',
                       new URLSearchParams({ passphrase: document.getElementById('bk-pass').value }));
  if (!r.ok) { sysMessage('Refused: ' + (await r.json()).error); return; }
  const a = document.getElementById('bk-link');
  a.href = URL.createObjectURL(await r.blob());
  a.download = 'gatehouse-backup.bin';
  a.hidden = false;
  sysMessage('Backup ready');
}

async function restore(ev) {
  ev.preventDefault();
  const file = document.getElementById('rs-file').files[0];
  const r = await change('/api/v1/system/restore', await file.arrayBuffer(), {
    'Content-Type': 'application/octet-stream',
    'X-Backup-Passphrase': document.getElementById('rs-pass').value,
    'X-Current-Password': document.getElementById('rs-me').value });
  const j = await r.json();
  sysMessage(r.ok ? 'Restored (configuration ' + j.version + ')' : 'Refused: ' + j.error);
  await loadConfigVersion();
  await loadSystem();
}

async function addUser(ev) {
  ev.preventDefault();
  const get = (id) => document.getElementById(id).value;
  const r = await post('/api/v1/users', new URLSearchParams({
    name: get('u-name'), role: get('u-role'), password: get('u-pass'), current_password: get('u-me') }));
  sysMessage(r.ok ? 'User added' : 'Refused: ' + (await r.json()).error);
  await loadSystem();
}

async function main() {
  me = await (await api('/api/v1/whoami')).json();
  document.getElementById('who').textContent = me.user + ' (' + me.role + ')';
  document.getElementById('csrf').value = me.csrf;
  document.getElementById('version').textContent = 'gatehouse ' + me.version + ', up ' +
    me.uptime + ' s';
  const p = me.policy;
  const mins = (x) => (x % 3600 === 0 ? x / 3600 + ' h' : x / 60 + ' min');
  document.getElementById('policy').replaceChildren(
    el('li', 'A session ends after ' + mins(p.session_idle) + ' unused, and ' +
       mins(p.session_lifetime) + ' after sign-in at the latest'),
    el('li', p.lockout_failures + ' wrong passwords in a row lock a user for ' +
       mins(p.lockout_time)));
  document.getElementById('role-note').textContent = {
    'read-only': 'Read-only: you can look at everything; the controls that change something are ' +
                 'shown disabled.',
    operator: 'Operator: you may put real servers up, drain or take them out and run meetings ' +
              '(admit, end, reopen); changes to the configuration are for admins.',
    admin: 'Admin: you may change everything but users (a user admin\'s).',
    'user-admin': 'User admin: you manage users and sessions; the rest is shown read-only.',
  }[me.role] || '';
  await loadConfigVersion();
  await refresh();
  await loadInventory();
  await loadIdps();
  await loadMeetings();
  document.getElementById('rule-test').addEventListener('submit', (ev) => {
    testRule(ev).catch(() => {}); });
  await loadRuleSets();
  for (const id of ['svc-add', 'rules-add', 'idp-add', 'group-add', 'svc-add-text']) {
    const b = document.getElementById(id);
    b.hidden = false;
    gate(b, 'admin');
  }
  if (gateBox(document.getElementById('cert-forms'), 'admin'))
    document.getElementById('cert-forms').hidden = false;
  if (me.role === 'admin') {
    setupCertForms();
    for (const [id, fn] of [['svc-add', () => openServiceForm(null)],
                            ['rules-add', () => openRulesForm(null)],
                            ['idp-add', () => openIdpForm(null)],
                            ['group-add', () => openGroupForm(null)]]) {
      const b = document.getElementById(id);
      b.addEventListener('click', () => { fn().catch((e) => {
        document.getElementById('svc-message').textContent = e.message; }); });
    }
    const add = document.getElementById('svc-add-text');
    add.addEventListener('click', () => openEditor(null,
      'service new-service {\n    listen 127.0.0.1:9999\n    allowed-hosts localhost\n' +
      '    allowed-dirs /*\n    app status\n}'));
    document.getElementById('svc-editor').addEventListener('submit', (ev) => {
      saveService(ev).catch((e) => { document.getElementById('svc-message').textContent = e.message; });
    });
    document.getElementById('svc-cancel').addEventListener('click', () => {
      document.getElementById('svc-editor').hidden = true; });
  }
  document.getElementById('sec-filter').addEventListener('submit', (ev) => {
    loadLogs(ev).catch(() => {}); });
  await loadLogs();
  systemShown = true;
  await loadSystem();
  document.getElementById('backup-form').addEventListener('submit', (ev) => {
    makeBackup(ev).catch((e) => sysMessage(e.message)); });
  document.getElementById('restore-form').addEventListener('submit', (ev) => {
    restore(ev).catch((e) => sysMessage(e.message)); });
  document.getElementById('user-form').addEventListener('submit', (ev) => {
    addUser(ev).catch((e) => sysMessage(e.message)); });
  gateBox(document.getElementById('meeting-create'), 'admin');
  gateBox(document.getElementById('idp-import'), 'admin');
  if (me.role === 'admin') {
    const mf = document.getElementById('meeting-create');
    mf.addEventListener('submit', (ev) => { createMeeting(ev).catch((e) => {
      document.getElementById('meeting-message').textContent = e.message; }); });
    const f = document.getElementById('idp-import');
    f.addEventListener('submit', (ev) => { importIdp(ev).catch((e) => {
      document.getElementById('idp-message').textContent = e.message; }); });
  }
  setInterval(() => { refresh().catch(() => {}); }, 2000);
  setInterval(() => { watchSession().catch(() => {}); }, 2000);
  setInterval(() => { loadConfigVersion(true).catch(() => {}); }, 3000);
  setInterval(() => { loadMeetings(true).catch(() => {}); }, 3000);
  await loadGraphs();
  setInterval(() => {
    if (document.body.dataset.page === 'statistics') loadGraphs().catch(() => {});
  }, 5000);
  for (const ev of ['keydown', 'pointerdown']) document.addEventListener(ev, activity, true);
  document.getElementById('idle-stay').addEventListener('click', () => {
    lastPing = 0;
    activity();
    document.getElementById('idle-warning').hidden = true;
  });
}

// One page at a time, each its own URL (/#services, /#meetings, ...): the
// address bar, bookmarks and back/forward work; an unknown one is Home.
function showPage() {
  const id = (window.location.hash || '#home').slice(1);
  const pages = [...document.querySelectorAll('main > section')];
  const page = pages.find((p) => p.id === id) ? id : 'home';
  for (const p of pages) p.hidden = p.id !== page;
  for (const a of document.querySelectorAll('#pages a')) {
    if (a.getAttribute('href') === '#' + page) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = 'gatehouse — ' + document.querySelector('#' + page + ' h1').textContent;
  document.body.dataset.page = page;
}

window.addEventListener('hashchange', showPage);
showPage();

// After admin-forms.js too (deferred scripts run before DOMContentLoaded).
document.addEventListener('DOMContentLoaded', () => {
  main().catch((e) => { document.getElementById('message').textContent = e.message; });
});
