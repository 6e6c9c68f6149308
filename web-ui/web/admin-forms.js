// Structured forms over /api/v1/blocks: a virtual service in sections
// (Basic, Standard, SSL, ESP, Rules, Real servers), an identity provider,
// a group, a rule set. A form sends only the directives whose value it
// changed; the server rewrites just those lines, so directives a form does
// not show (listed under "Other directives") and comments stay as written.
// Uses el(), api(), me and version from admin.js.
'use strict';

// Splits a directive's value as the config lexer does: words and "strings".
function tokens(raw) {
  const out = [];
  let i = 0;
  while (i < raw.length) {
    if (raw[i] === ' ' || raw[i] === '\t') { i++; continue; }
    if (raw[i] === '"') {
      let s = '';
      i++;
      while (i < raw.length && raw[i] !== '"') {
        if (raw[i] === '\\' && i + 1 < raw.length) i++;
        s += raw[i++];
      }
      i++;
      out.push(s);
    } else {
      let s = '';
      while (i < raw.length && raw[i] !== ' ' && raw[i] !== '\t') s += raw[i++];
      out.push(s);
    }
  }
  return out;
}

// A value as the config writes it: bare when it can be, else quoted.
function quote(s) {
  return /^[\x21-\x7e]+$/.test(s) && !/[{};#"]/.test(s) ? s
    : '"' + s.replace(/[\\"]/g, (c) => '\\' + c) + '"';
}

function input(value, attrs) {
  const e = el('input');
  e.value = value || '';
  Object.assign(e, attrs || {});
  return e;
}

function select(value, options) {
  const e = el('select');
  for (const o of options) {
    const opt = el('option', o === '' ? '(default)' : o);
    opt.value = o;
    e.append(opt);
  }
  e.value = options.includes(value) ? value : '';
  return e;
}

function labelled(text, control, note) {
  const l = el('label', text + ' ');
  l.append(control);
  if (note) l.append(el('span', ' ' + note, 'note'));
  return l;
}

// Widgets: each has key (the directive), node, value() -> lines joined by \n.
const widgets = {
  text(f, vals) { // one directive line, as written (quotes and all)
    const i = input(vals[0], { name: f.key, placeholder: f.placeholder || '' });
    return { node: labelled(f.label, i, f.note), value: () => i.value.trim() };
  },
  fixed(f, vals) { // shown, never sent: changing it would break what others hold
    const i = input(vals[0] || '(made when the record is added)', { name: f.key, readOnly: true });
    return { node: labelled(f.label, i, f.note), value: () => vals[0] || '' };
  },
  string(f, vals) { // one quoted string, shown without its quotes
    const i = input(vals.length ? tokens(vals[0]).join(' ') : '', { name: f.key });
    return { node: labelled(f.label, i, f.note),
             value: () => (i.value.trim() === '' ? '' : quote(i.value.trim())) };
  },
  lines(f, vals) { // one directive line per text line
    const t = el('textarea');
    t.name = f.key;
    t.rows = Math.max(2, vals.length + 1);
    t.cols = 70;
    t.spellcheck = false;
    t.value = vals.join('\n');
    return { node: labelled(f.label, t, f.note),
             value: () => t.value.split('\n').map((x) => x.trim()).filter((x) => x).join('\n') };
  },
  select(f, vals) {
    const s = select(vals[0] || '', f.options);
    s.name = f.key;
    return { node: labelled(f.label, s, f.note), value: () => s.value };
  },
  persistence(f, vals) {
    const t = tokens(vals[0] || 'off');
    const kind = select(t[0], ['', 'off', 'source-ip', 'cookie']);
    kind.name = 'persistence';
    const opt = (k) => { const j = t.indexOf(k); return j > 0 ? t[j + 1] : ''; };
    const cookie = input(t[0] === 'cookie' ? t[1] : '', { name: 'persistence-cookie' });
    const mask = input(opt('mask'), { name: 'persistence-mask', size: 4 });
    const timeout = input(opt('timeout'), { name: 'persistence-timeout', size: 6 });
    const box = el('div', undefined, 'composite');
    box.append(labelled('Persistence', kind), labelled('cookie name', cookie),
               labelled('source mask bits', mask), labelled('timeout', timeout, '(default 20m)'));
    return { node: box, value: () => {
      if (kind.value === '') return '';
      let v = kind.value;
      if (v === 'cookie') v += ' ' + quote(cookie.value.trim() || 'GHSRV');
      if (v === 'source-ip' && mask.value.trim()) v += ' mask ' + mask.value.trim();
      if (v !== 'off' && timeout.value.trim()) v += ' timeout ' + timeout.value.trim();
      return v;
    } };
  },
  reencrypt(f, vals) {
    const t = tokens(vals[0] || '');
    const mode = select(t[0] || '', ['', 'off', 'verify', 'pinned']);
    mode.name = 'reencrypt';
    const ca = input(t[0] === 'verify' ? t[1] : '', { name: 'reencrypt-ca' });
    const box = el('div', undefined, 'composite');
    box.append(labelled('Re-encrypt to real servers', mode),
               labelled('CA for real servers (with verify)', ca));
    return { node: box, value: () => (mode.value === 'verify'
      ? 'verify ' + quote(ca.value.trim()) : mode.value) };
  },
  check(f, vals) {
    const t = tokens(vals[0] || '');
    const keys = ['port', 'interval', 'timeout', 'rise', 'fall', 'expect', 'body', 'start'];
    const got = {};
    const extra = [];
    for (let i = 2; i < t.length; i++) {
      if (keys.includes(t[i]) && i + 1 < t.length) got[t[i]] = t[++i];
      else extra.push(quote(t[i]));
    }
    const method = select(t[0] || '', ['', 'get', 'head']);
    method.name = 'check-method';
    const url = input(t[1] || '', { name: 'check-url', placeholder: '/healthcheck.html' });
    const box = el('div', undefined, 'composite');
    box.append(labelled('Health check', method, '(default: off)'), labelled('URL', url));
    const ins = {};
    for (const k of keys) {
      ins[k] = input(got[k] || '', { name: 'check-' + k, size: k === 'body' ? 16 : 6 });
      box.append(labelled(k, ins[k]));
    }
    return { node: box, value: () => {
      if (method.value === '') return '';
      let v = method.value + ' ' + quote(url.value.trim() || '/');
      for (const k of keys) if (ins[k].value.trim()) v += ' ' + k + ' ' + quote(ins[k].value.trim());
      return extra.length ? v + ' ' + extra.join(' ') : v;
    } };
  },
  servers(f, vals) {
    const cols = ['weight', 'maxconn', 'state', 'verify-name', 'pin'];
    const table = el('table', undefined, 'servers');
    const head = el('tr');
    for (const h of ['name', 'address:port', ...cols, 'other options', '']) head.append(el('th', h));
    table.append(head);
    const rows = [];
    const addRow = (raw) => {
      const t = tokens(raw || '');
      const got = {};
      const extra = [];
      for (let i = 2; i < t.length; i++) {
        if (cols.includes(t[i]) && i + 1 < t.length) got[t[i]] = t[++i];
        else extra.push(quote(t[i]));
      }
      const r = { tr: el('tr'), name: input(t[0], { size: 10, name: 'server-name' }),
                  addr: input(t[1], { size: 18, name: 'server-address' }),
                  extra: input(extra.join(' '), { size: 12 }), ins: {} };
      r.tr.append(el('td'), el('td'));
      r.tr.children[0].append(r.name);
      r.tr.children[1].append(r.addr);
      for (const c of cols) {
        r.ins[c] = c === 'state' ? select(got.state || '', ['', 'up', 'drain', 'maint'])
          : input(got[c] || '', { size: c === 'pin' ? 20 : 6, name: 'server-' + c });
        const td = el('td');
        td.append(r.ins[c]);
        r.tr.append(td);
      }
      const tdx = el('td');
      tdx.append(r.extra);
      const rm = el('button', 'remove');
      rm.type = 'button';
      rm.addEventListener('click', () => { r.tr.remove(); rows.splice(rows.indexOf(r), 1); });
      const tdr = el('td');
      tdr.append(rm);
      r.tr.append(tdx, tdr);
      table.append(r.tr);
      rows.push(r);
    };
    for (const v of vals) addRow(v);
    const add = el('button', 'add a real server');
    add.type = 'button';
    add.dataset.action = 'add-server';
    add.addEventListener('click', () => addRow(''));
    const box = el('div', undefined, 'composite');
    box.append(table, add);
    return { node: box, value: () => rows.filter((r) => r.name.value.trim()).map((r) => {
      let v = quote(r.name.value.trim()) + ' ' + r.addr.value.trim();
      for (const c of cols) if (r.ins[c].value.trim()) v += ' ' + c + ' ' + quote(r.ins[c].value.trim());
      return r.extra.value.trim() ? v + ' ' + r.extra.value.trim() : v;
    }).join('\n') };
  },
};

const SERVICE_FORM = [
  ['Basic', [
    { key: 'listen', label: 'Address:port', type: 'text', placeholder: '0.0.0.0:443' },
    { key: 'app', label: 'Built-in application', type: 'select',
      options: ['', 'status', 'management', 'conference', 'admin'],
      note: '(none: the real servers below)' }]],
  ['Standard', [
    { key: 'scheduler', label: 'Scheduler', type: 'select',
      options: ['', 'least-conn', 'round-robin', 'source-hash'], note: '(default least-conn)' },
    { key: 'persistence', type: 'persistence' },
    { key: 'idle-timeout', label: 'Idle timeout', type: 'text',
      note: '(default 1800s; bounds every wait the fields below leave empty)' },
    { key: 'keepalive-timeout', label: 'Keep-alive timeout', type: 'text',
      note: '(default: the idle timeout)' },
    { key: 'client-header-timeout', label: 'Client header timeout', type: 'text',
      note: '(default 10s)' },
    { key: 'connect-timeout', label: 'Connect timeout', type: 'text', note: '(default 5s)' },
    { key: 'server-timeout', label: 'Real server timeout', type: 'text',
      note: '(default: the idle timeout)' }]],
  ['SSL', [
    { key: 'certificate', label: 'Certificates', type: 'text',
      note: '(certificate names, space separated; none: plain HTTP)' },
    { key: 'tls-versions', label: 'TLS versions', type: 'text', placeholder: '1.2 1.3' },
    { key: 'hsts-max-age', label: 'HSTS max-age', type: 'text' },
    { key: 'sni-host-match', label: 'Host must equal SNI', type: 'select', options: ['', 'on', 'off'] },
    { key: 'reencrypt', type: 'reencrypt' },
    { key: 'client-certificate', label: 'Client certificate to real servers', type: 'text' }]],
  ['ESP', [
    { key: 'allowed-hosts', label: 'Allowed virtual hosts', type: 'lines',
      note: '(empty refuses every request; * allows all)' },
    { key: 'allowed-dirs', label: 'Allowed directories', type: 'lines', note: '(e.g. /meet/*)' },
    { key: 'allowed-methods', label: 'Allowed methods', type: 'text' },
    { key: 'merge-slashes', label: 'Merge slashes', type: 'select', options: ['', 'on', 'off'] },
    { key: 'encoded-slash', label: 'Encoded slash', type: 'select', options: ['', 'refuse', 'allow'] },
    { key: 'server-header', label: 'Server header', type: 'select', options: ['', 'strip', 'pass'] }]],
  ['Rules', [
    { key: 'rule-set', label: 'Rule set', type: 'text', note: '(a rules block; see Rule sets)' },
    { key: 'max-conns-per-source', label: 'Connections per client', type: 'text' },
    { key: 'conn-rate-per-source', label: 'New connections per second per client', type: 'text' },
    { key: 'request-rate-per-source', label: 'Requests per second per client', type: 'text' },
    { key: 'request-burst-per-source', label: 'Request burst per client', type: 'text' },
    { key: 'limit-action', label: 'Over the rate', type: 'select', options: ['', '429', 'close'] }]],
  ['Real servers', [
    { key: 'server', type: 'servers' },
    { key: 'check', type: 'check' }]],
];

const IDP_FORM = [
  ['Identity Provider', [
    { key: 'description', label: 'Description', type: 'string' },
    { key: 'uuid', label: 'UUID', type: 'fixed', note: '(fixed: it is in the ACS URLs the IdP knows)' },
    { key: 'idp-entity-id', label: 'IdP entity ID', type: 'string' },
    { key: 'idp-sso-url', label: 'SSO URL', type: 'string' },
    { key: 'idp-certificate', label: 'IdP public certificates (PEM files)', type: 'lines' },
    { key: 'display-name-attribute', label: 'Display name attribute', type: 'text',
      note: '(empty: NameID; "" lets participants type a name)' }]],
  ['Service provider', [
    { key: 'sp-certificate', label: 'Service entity certificate', type: 'text',
      note: '(a certificate block)' },
    { key: 'sp-entity-id', label: 'SAML 2.0 Entity ID for this service', type: 'string' },
    { key: 'acs-from-services', label: 'ACS URLs from every service name', type: 'select',
      options: ['', 'on', 'off'] },
    { key: 'acs-url', label: 'Assertion consumer service URLs', type: 'lines' },
    { key: 'signature-algorithm', label: 'Signature algorithm', type: 'select',
      options: ['', 'rsa-sha256', 'rsa-sha384', 'rsa-sha512', 'rsa-sha1'] },
    { key: 'digest-algorithm', label: 'Digest algorithm', type: 'select',
      options: ['', 'sha256', 'sha384', 'sha512', 'sha1'] },
    { key: 'allow-sha1', label: 'Allow SHA-1', type: 'select', options: ['', 'off', 'on'] },
    { key: 'require-encryption', label: 'Require encrypted assertions', type: 'select',
      options: ['', 'off', 'on'] },
    { key: 'session-timeout', label: 'Session timeout', type: 'text' },
    { key: 'clock-skew', label: 'Clock skew', type: 'text' }]],
];

const GROUP_FORM = [
  ['Identity Provider group', [
    { key: 'description', label: 'Description', type: 'string' },
    { key: 'identity-providers', label: 'Identity providers', type: 'lines',
      note: '(names; quote a name with spaces)' }]],
];

const RULES_FORM = [
  ['Rules', [
    { key: 'rule', label: 'Rules, in order', type: 'lines',
      note: '(ID ACTION if FIELD OP VALUE, one per line)' }]],
];

// The Rules section's box: which rule of the service's set decides a
// pasted request (the set as saved; the same check as the proxy's).
function ruleTester(ws) {
  const box = el('div', undefined, 'composite');
  const req = el('textarea');
  req.rows = 4;
  req.name = 'rule-test-request';
  req.spellcheck = false;
  req.value = 'GET /path?q=1 HTTP/1.1\nHost: meet.example.com\nUser-Agent: test';
  const go = el('button', 'Which rule matches?');
  go.type = 'button';
  go.dataset.action = 'rule-test';
  const out = el('p', '', 'rule-test-result');
  go.addEventListener('click', async () => {
    const set = ws.find((w) => w.key === 'rule-set').value();
    if (!set) { out.textContent = 'No rule set: every request passes to the directory check'; return; }
    out.textContent = await ruleVerdict(set, req.value);
  });
  box.append(labelled('A request (paste it)', req), go, out);
  return box;
}

// Renders the form for block kind/name (name null: a new block) into box.
async function blockForm(box, kind, name, spec, onSaved) {
  let dirs = [];
  let opened = version; // the version this form shows; its save sends it
  if (name !== null) {
    const r = await api('/api/v1/blocks/' + kind + '/' + encodeURIComponent(name));
    if (!r.ok) { box.replaceChildren(el('p', 'Refused: ' + (await r.json()).error)); return; }
    opened = versionOf(r);
    dirs = (await r.json()).directives;
  }
  const byKey = {};
  for (const d of dirs) (byKey[d.name] = byKey[d.name] || []).push(d.value);
  const form = el('form', undefined, 'block-form');
  form.dataset.kind = kind;
  form.append(el('h2', (name === null ? 'New ' + kind : 'Modify ' + kind + ' ' + name)));
  const nameIn = input(name === null ? '' : name, { name: '_name', required: true });
  form.append(labelled('Name', nameIn));
  const ws = [];
  const shown = new Set();
  for (const [title, fields] of spec) {
    const fs = el('fieldset');
    fs.dataset.section = title;
    fs.append(el('legend', title));
    for (const f of fields) {
      const w = widgets[f.type](f, byKey[f.key] || []);
      w.key = f.key;
      w.initial = w.value();
      ws.push(w);
      shown.add(f.key);
      fs.append(w.node);
    }
    if (title === 'Rules' && kind === 'service') fs.append(ruleTester(ws));
    form.append(fs);
  }
  // Directives no section shows: each editable as its lines, as written;
  // a nested block (none today) only shown. Plus one new directive.
  const other = dirs.filter((d) => !shown.has(d.name));
  const fs = el('fieldset');
  fs.dataset.section = 'Other';
  fs.append(el('legend', 'Other directives (as written)'));
  for (const key of [...new Set(other.filter((d) => !d.block).map((d) => d.name))]) {
    const w = widgets.lines({ key, label: key }, byKey[key]);
    w.key = key;
    w.initial = w.value();
    ws.push(w);
    shown.add(key);
    fs.append(w.node);
  }
  const blocks = other.filter((d) => d.block);
  if (blocks.length)
    fs.append(el('pre', blocks.map((d) => d.name + ' ' + d.value).join('\n'), 'other'));
  const newKey = input('', { name: 'new-directive', placeholder: 'directive' });
  const newVal = input('', { name: 'new-value', placeholder: 'value' });
  const add = el('div', undefined, 'composite');
  add.append(labelled('Add a directive', newKey), labelled('value', newVal));
  fs.append(add);
  form.append(fs);
  const save = el('button', name === null ? 'Add' : 'Save');
  save.type = 'submit';
  save.dataset.action = 'save-form';
  const cancel = el('button', 'Close');
  cancel.type = 'button';
  cancel.addEventListener('click', () => box.replaceChildren());
  const msg = el('p', '', 'form-message');
  msg.setAttribute('role', 'status');
  form.append(save, cancel, msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = new URLSearchParams();
    if (name === null || nameIn.value.trim() !== name) body.append('_name', nameIn.value.trim());
    for (const w of ws) {
      const v = w.value();
      if (v !== w.initial) body.append(w.key, v);
    }
    const nk = newKey.value.trim();
    if (nk) {
      if (shown.has(nk)) {
        msg.textContent = nk + ' has a field of its own above: change it there';
        return;
      }
      body.append(nk, newVal.value.trim());
    }
    const url = '/api/v1/blocks/' + kind + (name === null ? '' : '/' + encodeURIComponent(name));
    const r = await change(url, body, undefined, opened);
    const j = await r.json();
    msg.textContent = r.ok ? 'Saved (configuration ' + j.version + ')'
      : r.status === 412 ? 'Not saved: someone changed the configuration since this form ' +
                           'opened (now ' + j.version + '). Close and open it again to see ' +
                           'their change, then make yours.'
        : 'Refused: ' + j.error;
    if (r.ok) opened = j.version;
    await loadConfigVersion();
    if (r.ok) await onSaved(nameIn.value.trim());
  });
  box.replaceChildren(form);
}

async function deleteBlock(kind, name, msgId, after) {
  if (!window.confirm('Delete the ' + kind + ' ' + name + '?')) return;
  const r = await change('/api/v1/blocks/' + kind + '/' + encodeURIComponent(name) + '/delete', '');
  const j = await r.json();
  document.getElementById(msgId).textContent = r.ok ? name + ' deleted' : 'Refused: ' + j.error;
  await loadConfigVersion();
  await after();
}

function openServiceForm(name) {
  const box = document.getElementById('svc-form');
  return blockForm(box, 'service', name, SERVICE_FORM, async () => { await loadInventory(); });
}

function openIdpForm(name) {
  return blockForm(document.getElementById('idp-form'), 'identity-provider', name, IDP_FORM,
                   async () => { await loadIdps(); });
}

function openGroupForm(name) {
  return blockForm(document.getElementById('idp-form'), 'identity-provider-group', name,
                   GROUP_FORM, async () => { await loadIdps(); });
}

function openRulesForm(name) {
  return blockForm(document.getElementById('rules-form'), 'rules', name, RULES_FORM,
                   loadRuleSets);
}

async function loadRuleSets() {
  const r = await api('/api/v1/rule-sets');
  if (!r.ok) return;
  const j = await r.json();
  const rows = j.rule_sets.map((rs) => {
    const tr = el('tr');
    tr.dataset.ruleset = rs.name;
    tr.append(el('td', rs.name), el('td', rs.rules), el('td', rs.used_by.join(' ') || '-'),
              editCell('rules', rs.name, openRulesForm, 'svc-message', loadRuleSets));
    return tr;
  });
  document.querySelector('#rules-table tbody').replaceChildren(...rows);
}

// Certificates: import (PEM pair or PKCS#12), self-signed or CSR, issued chain.
function certMessage(text) { document.getElementById('cert-message').textContent = text; }

async function certPost(path, body, extra) {
  const r = await change(path, body, extra);
  await loadConfigVersion();
  await loadInventory();
  return r;
}

async function importCert(ev) {
  ev.preventDefault();
  const name = document.getElementById('ci-name').value.trim();
  const files = [...document.getElementById('ci-files').files];
  const bufs = await Promise.all(files.map((f) => f.arrayBuffer()));
  const text = (b) => new TextDecoder().decode(b);
  // PEM files go up as one text; a binary file (PKCS#12) goes alone.
  const pem = bufs.every((b) => text(b).includes('-----BEGIN '));
  const body = pem ? bufs.map(text).join('\n') : bufs[0];
  const extra = { 'Content-Type': pem ? 'application/x-pem-file' : 'application/x-pkcs12' };
  const pass = document.getElementById('ci-pass').value;
  if (pass) extra['X-Passphrase'] = pass;
  const r = await certPost('/api/v1/certificates/' + encodeURIComponent(name) + '/import', body,
                           extra);
  const j = await r.json();
  certMessage(r.ok ? 'Imported ' + name + ' (configuration ' + j.version + ')'
                   : 'Refused: ' + j.error);
}

async function makeCert(ev) {
  ev.preventDefault();
  const kind = ev.submitter ? ev.submitter.dataset.kind : 'selfsigned';
  const get = (id) => document.getElementById(id).value.trim();
  const body = new URLSearchParams({ name: get('cm-name'), cn: get('cm-cn'), sans: get('cm-sans'),
                                     rsa: get('cm-key'), days: get('cm-days') });
  const r = await certPost('/api/v1/certificates/' + kind, body);
  if (kind === 'csr' && r.ok) {
    const out = document.getElementById('csr-out');
    out.textContent = await r.text();
    out.hidden = false;
    document.getElementById('cs-name').value = get('cm-name');
    certMessage('CSR made: send it to your CA, then install what it issues below');
    return;
  }
  const j = await r.json();
  certMessage(r.ok ? 'Made ' + get('cm-name') : 'Refused: ' + j.error);
}

async function installIssued(ev) {
  ev.preventDefault();
  const name = document.getElementById('cs-name').value.trim();
  const file = document.getElementById('cs-file').files[0];
  const r = await certPost('/api/v1/certificates/' + encodeURIComponent(name) + '/issued',
                           await file.text(), { 'Content-Type': 'application/x-pem-file' });
  const j = await r.json();
  certMessage(r.ok ? 'Installed ' + name : 'Refused: ' + j.error);
}

function setupCertForms() {
  document.getElementById('cert-forms').hidden = false;
  const on = (id, fn) => document.getElementById(id).addEventListener('submit', (ev) => {
    fn(ev).catch((e) => certMessage(e.message)); });
  on('cert-import', importCert);
  on('cert-make', makeCert);
  on('cert-issued', installIssued);
}

// A meeting's join rules. PINs are never shown: a PIN field left empty
// keeps the PIN, "remove" clears it. The alias and the invitation stay.
function openMeetingForm(m) {
  const form = el('form', undefined, 'meeting-form');
  form.append(el('h2', 'Modify ' + m.alias));
  const pin = (label, set) => {
    const i = input('', { inputMode: 'numeric', placeholder: set ? '(unchanged)' : '(none)' });
    const rm = input('', { type: 'checkbox' });
    rm.className = 'inline';
    const box = el('div', undefined, 'composite');
    box.append(labelled(label, i), labelled('remove it', rm));
    return { box, i, rm };
  };
  const host = pin('Host PIN', m.host_pin_set);
  const guest = pin('Guest PIN', m.guest_pin_set);
  host.i.name = 'host_pin';
  guest.i.name = 'guest_pin';
  const auth = select(m.authentication, ['none', 'hosts', 'guests', 'both']);
  auth.name = 'authentication';
  const group = input(m.idp_group, { name: 'idp_group' });
  const other = select(m.other_participants, ['allowed-if-trusted', 'disallow-all']);
  other.name = 'other_participants';
  const revoke = input('', { type: 'checkbox', name: 'revoke_tokens' });
  revoke.className = 'inline';
  const msg = el('p', '', 'form-message');
  msg.setAttribute('role', 'status');
  const save = el('button', 'Save');
  save.type = 'submit';
  save.dataset.action = 'save-meeting';
  const close = el('button', 'Close');
  close.type = 'button';
  close.addEventListener('click', () => form.remove());
  form.append(host.box, guest.box, labelled('Participant authentication', auth),
              labelled('Identity Provider group', group), labelled('Other participants', other),
              labelled('Everyone joins again under the new rules', revoke), save, close, msg);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = new URLSearchParams({ authentication: auth.value, idp_group: group.value.trim(),
                                       other_participants: other.value });
    for (const p of [['host_pin', host], ['guest_pin', guest]]) {
      if (p[1].rm.checked) body.append(p[0], '');
      else if (p[1].i.value.trim()) body.append(p[0], p[1].i.value.trim());
    }
    if (revoke.checked) body.append('revoke_tokens', '1');
    const r = await post('/api/v1/meetings/' + encodeURIComponent(m.alias), body);
    const j = await r.json();
    msg.textContent = r.ok ? 'Saved' : 'Refused: ' + j.error;
    if (r.ok) await loadMeetings();
  });
  document.getElementById('meeting-form').replaceChildren(form);
}
