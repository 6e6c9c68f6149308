// Two tabs of one admin in Debian's chromium: tab A opens the text editor
// (and then the structured form) of service "public"; tab B drains a real
// server meanwhile; A's save must be refused as stale with the three texts
// shown (base, theirs, yours), and nothing of B's change lost.
// usage: node admin_twotabs.mjs URL USER PASSWORD OUTDIR
import path from 'node:path';
import { go, withChromium } from './chromium.mjs';

const [url, user, pw, out] = process.argv.slice(2);
const result = { errors: [] };

await withChromium(async (a) => {
  a.on('pageerror', (e) => result.errors.push('A: ' + String(e)));
  await a.goto(url + '/login');
  await a.fill('#user', user);
  await a.fill('#password', pw);
  await Promise.all([a.waitForLoadState('load'), a.click('#signin')]);
  const b = await a.context().newPage();
  b.on('pageerror', (e) => result.errors.push('B: ' + String(e)));
  await go(a, 'services');
  const editText = 'tr[data-service="public"] button[data-action="edit-text"]';
  await a.waitForSelector(editText, { timeout: 15000 });
  await a.click(editText);
  await a.waitForSelector('#svc-editor:not([hidden])');
  const base = await a.inputValue('#svc-text');
  // Tab B, same session: drain web1.
  await b.goto(url + '/#statistics');
  const drain = 'tr[data-server="public/web1"] button[data-action="drain"]';
  await b.waitForSelector(drain, { timeout: 15000 });
  await b.click(drain);
  await b.waitForFunction(() => /drain/.test(document.getElementById('message').textContent),
                          null, { timeout: 15000 });
  // Tab A saves its edit on the old text (its page has polled meanwhile).
  await a.waitForTimeout(2500);
  await a.fill('#svc-text', base.replace('allowed-dirs', '# edited in tab A\n    allowed-dirs'));
  await a.click('#svc-save');
  await a.waitForSelector('#svc-conflict:not([hidden]) .three-way', { timeout: 15000 });
  result.conflict = {
    message: await a.textContent('#svc-conflict p.refused'),
    base: await a.textContent('#svc-conflict .base pre'),
    theirs: await a.textContent('#svc-conflict .theirs pre'),
    yours: await a.textContent('#svc-conflict .yours pre'),
    titles: await a.$$eval('#svc-conflict h3', (h) => h.map((x) => x.textContent)),
  };
  await a.screenshot({ path: path.join(out, 'three-way.png'), fullPage: true });
  // Start again from theirs, make the edit again: now it saves.
  await a.click('#svc-conflict button[data-action="take-theirs"]');
  const again = await a.inputValue('#svc-text');
  result.restartHasDrain = /state drain/.test(again);
  await a.fill('#svc-text', again.replace('allowed-dirs', '# edited in tab A\n    allowed-dirs'));
  await a.click('#svc-save');
  await a.waitForFunction(() => /^Saved/.test(document.getElementById('svc-message').textContent),
                          null, { timeout: 15000 });
  result.saved = await a.textContent('#svc-message');
  // The structured form, stale the same way: refused in words.
  await a.click('tr[data-service="public"] button[data-action="modify"]');
  await a.waitForSelector('#svc-form input[name="idle-timeout"]', { timeout: 15000 });
  await b.reload();
  await go(b, 'statistics');
  await b.waitForSelector('tr[data-server="public/web2"] button[data-action="drain"]',
                          { timeout: 15000 });
  await b.click('tr[data-server="public/web2"] button[data-action="drain"]');
  await b.waitForFunction(() => /web2: drain/.test(document.getElementById('message').textContent),
                          null, { timeout: 15000 });
  await a.fill('#svc-form input[name="idle-timeout"]', '77s');
  await a.click('#svc-form button[data-action="save-form"]');
  await a.waitForFunction(() => document.querySelector('#svc-form .form-message')?.textContent.length > 0,
                          null, { timeout: 15000 });
  result.formMessage = await a.textContent('#svc-form .form-message');
});
console.log(JSON.stringify(result));
