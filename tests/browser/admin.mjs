// Drives Debian's chromium through the admin application: a wrong password,
// a sign-in, the statistics page, drain and a weight change as the admin,
// and the read-only view. Reports what the pages show, console errors and
// CSP violations, and saves a PNG of every page.
// usage: node admin.mjs URL USER PASSWORD VIEWER VIEWER_PASSWORD OUTDIR
import path from 'node:path';
import { go, withChromium } from './chromium.mjs';

const [url, user, pw, viewer, viewerPw, out] = process.argv.slice(2);
const result = { errors: [], csp: [], shots: [] };

async function session(name, fn) {
  await withChromium(async (page) => {
    page.on('console', (m) => { if (m.type() === 'error') result.errors.push(name + ': ' + m.text()); });
    page.on('pageerror', (e) => result.errors.push(name + ': ' + String(e)));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation',
        (e) => console.error('CSP violation ' + e.violatedDirective + ' ' + e.blockedURI));
    });
    await fn(page);
  });
}

async function shot(page, name) {
  const p = path.join(out, name + '.png');
  await page.screenshot({ path: p, fullPage: true });
  result.shots.push(p);
}

async function signIn(page, u, p) {
  await page.goto(url + '/login');
  await page.fill('#user', u);
  await page.fill('#password', p);
  await Promise.all([page.waitForLoadState('load'), page.click('#signin')]);
}

await session('admin', async (page) => {
  await signIn(page, user, 'not the password 1');
  result.wrong = await page.textContent('body');
  await shot(page, 'login-refused');
  // The refused sign-in is a 401 on purpose; Chrome logs that as an error.
  result.expected = result.errors.splice(0);
  await signIn(page, user, pw);
  await page.waitForSelector('#home:not([hidden])', { timeout: 15000 });
  result.home = await page.evaluate(() => [...document.querySelectorAll('main > section')]
    .filter((s) => !s.hidden).map((s) => s.id));
  // Every page by its URL, and back/forward between them.
  result.pages = {};
  for (const id of ['home', 'services', 'statistics', 'rules', 'certificates', 'idps', 'meetings',
                    'logs', 'system']) {
    await page.goto(url + '/#' + id);
    await page.waitForSelector('section#' + id + ':not([hidden])', { timeout: 15000 });
    result.pages[id] = await page.evaluate(() => [document.body.dataset.page,
      [...document.querySelectorAll('main > section')].filter((s) => !s.hidden).length,
      document.querySelector('#pages a[aria-current="page"]')?.getAttribute('href')]);
  }
  await page.goBack();
  await page.waitForFunction(() => document.body.dataset.page === 'logs', null, { timeout: 15000 });
  await page.goForward();
  await page.waitForFunction(() => document.body.dataset.page === 'system', null, { timeout: 15000 });
  result.backForward = true;
  await go(page, 'statistics');
  try {
    await page.waitForSelector('tr[data-server] button[data-action="drain"]', { timeout: 15000 });
  } catch (e) {
    await shot(page, 'stuck');
    throw new Error('no drain button; the page says: ' + (await page.textContent('body')) +
                    ' errors: ' + result.errors.join(' | '));
  }
  result.who = await page.textContent('#who');
  result.health = await page.textContent('#health');
  result.appRows = await page.$$eval('tr[data-server^="admin/"]', (els) => els.length);
  result.appButtons = await page.$$eval('tr[data-server^="admin/"] button, tr[data-server^="admin/"] input',
                                        (els) => els.length);
  await shot(page, 'statistics');
  const row = 'tr[data-server="public/web1"]';
  await page.click(row + ' button[data-action="drain"]');
  await page.waitForFunction((r) => document.querySelector(r + ' .state')?.textContent === 'drain',
                             row, { timeout: 15000 });
  // Two polls at least: the request rate is a number, the drained server shows on Home.
  await page.waitForFunction((r) => /^[0-9.]+$/.test(document.querySelector(r + ' .rate')?.textContent),
                             row, { timeout: 15000 });
  result.rate = await page.textContent(row + ' .rate');
  result.healthAfterDrain = await page.textContent('#health');
  await page.fill(row + ' input.weight', '7');
  await page.click(row + ' button[data-action="weight"]');
  await page.waitForFunction((r) => document.querySelector(r + ' .name')?.textContent.includes('(weight 7)'),
                             row, { timeout: 15000 });
  result.message = await page.textContent('#message');
  result.names = await page.$$eval('tr.service td:first-child', (els) => els.map((e) => e.textContent));
  result.injected = await page.evaluate(() => document.querySelectorAll('img, script:not([src])').length);
  await shot(page, 'after-changes');
  // The rule tester and the service editor.
  await go(page, 'rules');
  await page.fill('#rt-set', 'guard');
  await page.fill('#rt-req', 'GET /admin/secret HTTP/1.1\nHost: localhost\n');
  await page.click('#rt-go');
  await page.waitForFunction(() => document.getElementById('rt-result').textContent.length > 0,
                             null, { timeout: 15000 });
  result.ruleResult = await page.textContent('#rt-result');
  await go(page, 'services');
  await page.click('tr[data-service="public"] button[data-action="edit-text"]');
  await page.waitForFunction(() => document.getElementById('svc-text').value.startsWith('service public'),
                             null, { timeout: 15000 });
  const block = await page.inputValue('#svc-text');
  await page.fill('#svc-text', block.replace('allowed-dirs /*', 'allowed-dirs /whoami /*'));
  await page.click('#svc-save');
  await page.waitForFunction(() => document.getElementById('svc-message').textContent.startsWith('Saved'),
                             null, { timeout: 15000 });
  result.svcMessage = await page.textContent('#svc-message');
  await shot(page, 'services-edited');
  // The history says who changed what; rolling back shows what it will
  // change, and only the confirmation does it.
  await go(page, 'system');
  await page.waitForSelector('#hist-table button[data-action="rollback"]', { timeout: 15000 });
  result.history = await page.$eval('#hist-table tbody tr:first-child', (tr) => ({
    who: tr.querySelector('.who').textContent, label: tr.querySelector('.label').textContent,
    changed: tr.querySelector('.changed').textContent,
    versions: tr.querySelector('.versions').textContent }));
  await page.click('#hist-table tr:first-child button[data-action="diff"]');
  await page.waitForSelector('#hist-diff-box pre', { timeout: 15000 });
  result.diffTitle = await page.textContent('#hist-diff-box .diff-title');
  result.diff = await page.textContent('#hist-diff-box pre');
  await page.click('#hist-table tr:first-child button[data-action="rollback"]');
  await page.waitForSelector('#hist-diff-box button[data-action="confirm-rollback"]', { timeout: 15000 });
  result.rollbackPreviewTitle = await page.textContent('#hist-diff-box .diff-title');
  result.rollbackPreview = await page.textContent('#hist-diff-box pre');
  result.configBeforeConfirm = await page.evaluate(async () =>
    (await (await fetch('/api/v1/config')).json()).text);
  await page.click('#hist-diff-box button[data-action="confirm-rollback"]');
  await page.waitForFunction(() => document.getElementById('sys-message').textContent.startsWith('Rolled back'),
                             null, { timeout: 15000 });
  result.rollback = await page.textContent('#sys-message');
  await shot(page, 'system');
  // The service in sections: change a timeout and the second server's weight.
  await go(page, 'services');
  await page.click('tr[data-service="public"] button[data-action="modify"]');
  await page.waitForSelector('#svc-form form.block-form fieldset[data-section="Real servers"]',
                             { timeout: 15000 });
  result.formSections = await page.$$eval('#svc-form fieldset', (els) => els.map((e) => e.dataset.section));
  // The Rules section's tester, on a set typed in (not saved: cleared again).
  await page.fill('#svc-form input[name="rule-set"]', 'guard');
  await page.fill('#svc-form textarea[name="rule-test-request"]', 'GET /admin/x HTTP/1.1\nHost: localhost\n');
  await page.click('#svc-form button[data-action="rule-test"]');
  await page.waitForFunction(() => document.querySelector('#svc-form .rule-test-result')?.textContent.length > 0,
                             null, { timeout: 15000 });
  result.formRuleTest = await page.textContent('#svc-form .rule-test-result');
  await page.fill('#svc-form input[name="rule-set"]', '');
  await page.fill('#svc-form input[name="idle-timeout"]', '120s');
  await page.fill('#svc-form input[name="new-directive"]', 'retries');
  await page.fill('#svc-form input[name="new-value"]', '2');
  await page.fill('#svc-form table.servers tr:nth-child(3) input[name="server-weight"]', '5');
  await page.click('#svc-form button[data-action="save-form"]');
  await page.waitForFunction(() => document.querySelector('#svc-form .form-message')?.textContent.startsWith('Saved'),
                             null, { timeout: 15000 });
  result.formMessage = await page.textContent('#svc-form .form-message');
  await shot(page, 'service-form');
  // A meeting created, then its Host PIN changed.
  await go(page, 'meetings');
  await page.fill('#m-alias', 'browser-room');
  await page.fill('#m-host', '1234');
  await page.click('#m-create');
  await page.waitForSelector('tr[data-meeting="browser-room"] button[data-action="modify"]',
                             { timeout: 15000 });
  await page.click('tr[data-meeting="browser-room"] button[data-action="modify"]');
  await page.fill('#meeting-form input[name="host_pin"]', '5678');
  await page.click('#meeting-form button[data-action="save-meeting"]');
  await page.waitForFunction(() => document.querySelector('#meeting-form .form-message')?.textContent.length > 0,
                             null, { timeout: 15000 });
  result.meetingMessage = await page.textContent('#meeting-form .form-message');
  await shot(page, 'meetings');
  if (process.env.GH_CERT_FILES) {
    await go(page, 'certificates');
    await page.fill('#ci-name', 'from-browser');
    await page.setInputFiles('#ci-files', process.env.GH_CERT_FILES.split(','));
    await page.click('#ci-go');
    await page.waitForFunction(() => document.getElementById('cert-message').textContent.length > 0,
                               null, { timeout: 15000 });
    result.certMessage = await page.textContent('#cert-message');
    await page.waitForSelector('tr[data-certificate="from-browser"]', { timeout: 15000 });
    await shot(page, 'certificates');
  }
  if (process.env.GH_IDP_METADATA) {
    await go(page, 'idps');
    await page.fill('#idp-name', 'Browser IdP');
    await page.fill('#idp-spcert', 'sp');
    await page.fill('#idp-spentity', 'https://localhost/saml-browser');
    await page.setInputFiles('#idp-file', process.env.GH_IDP_METADATA);
    await page.click('#idp-upload');
    await page.waitForFunction(() => document.getElementById('idp-message').textContent.startsWith('Imported'),
                               null, { timeout: 15000 });
    const link = page.locator('a.sp-metadata').first();
    const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const saved = path.join(out, 'sp-metadata.xml');
    await dl.saveAs(saved);
    result.downloaded = saved;
    result.idpMessage = await page.textContent('#idp-message');
    await shot(page, 'identity-providers');
    await page.click('#idp-table tr[data-idp] button[data-action="modify"]');
    await page.waitForSelector('#idp-form form.block-form', { timeout: 15000 });
    result.uuidReadOnly = await page.$eval('#idp-form input[name="uuid"]', (e) => e.readOnly);
    await page.fill('#idp-form input[name="description"]', 'Edited in the browser');
    await page.click('#idp-form button[data-action="save-form"]');
    await page.waitForFunction(() => document.querySelector('#idp-form .form-message')?.textContent.startsWith('Saved'),
                               null, { timeout: 15000 });
    result.idpFormMessage = await page.textContent('#idp-form .form-message');
    await shot(page, 'idp-form');
  }
});

await session('viewer', async (page) => {
  await signIn(page, viewer, viewerPw);
  await go(page, 'statistics');
  await page.waitForSelector('tr[data-server]', { timeout: 15000 });
  // The meetings list loads on its own request: its buttons are counted too.
  await page.waitForSelector('tr[data-meeting] button[data-action="end"]',
                             { state: 'attached', timeout: 15000 });
  result.viewerButtons = await page.$$eval(
    'button[data-action]:not([data-action="diff"]):not([disabled]), input.weight:not([disabled])',
    (els) => els.length);
  // What the role may not use is there, disabled, saying why.
  result.viewerDisabled = await page.$$eval('button[disabled][title], input[disabled][title]',
    (els) => els.map((e) => (e.dataset.action || e.className) + ': ' + e.title));
  result.viewerNotes = await page.$$eval('.why-not', (els) => els.map((e) => e.textContent));
  result.viewerRoleNote = await page.textContent('#role-note');
  result.viewerWho = await page.textContent('#who');
  await shot(page, 'read-only');
});

if (process.env.GH_OPERATOR) {
  // An operator: state changes enabled, configuration changes disabled with why.
  const [opUser, opPw] = process.env.GH_OPERATOR.split(':');
  await session('operator', async (page) => {
    await signIn(page, opUser, opPw);
    await go(page, 'statistics');
    await page.waitForSelector('tr[data-server] button[data-action]', { timeout: 15000 });
    result.operatorEnabled = await page.$$eval(
      'tr[data-server] button[data-action]:not([disabled])', (els) => els.map((e) => e.dataset.action));
    result.operatorDisabled = await page.$$eval('button[disabled][title], input[disabled][title]',
      (els) => els.map((e) => (e.dataset.action || e.className) + ': ' + e.title));
    await shot(page, 'operator');
  });
}

if (process.env.GH_LOCKOUT_USER) {
  await session('lockout', async (page) => {
    const u = process.env.GH_LOCKOUT_USER;
    for (let i = 0; i < 5; i++) await signIn(page, u, 'wrong password ' + i);
    await signIn(page, u, process.env.GH_LOCKOUT_PASSWORD);
    result.lockedText = await page.textContent('body');
    result.lockedUrl = page.url();
    await shot(page, 'locked-out');
    // Six refused sign-ins are six 401s, which Chrome logs as errors.
    result.lockoutErrors = result.errors.filter((e) => e.startsWith('lockout: '));
    result.errors = result.errors.filter((e) => !e.startsWith('lockout: '));
  });
}

console.log(JSON.stringify(result));
