// Drives Debian's chromium through the admin application's meetings: create
// a room (the invitation is shown once, with copy buttons and an e-mail
// text), write the invitation to OUTDIR/invitation.json (the test joins
// with it),
// admit the waiting device as it appears in the live list (no reload),
// see it among the participants, end the meeting and read the result.
// usage: node admin_meetings.mjs URL USER PASSWORD OUTDIR
import fs from 'node:fs';
import path from 'node:path';
import { go, withChromium } from './chromium.mjs';

const [url, user, pw, out] = process.argv.slice(2);
const result = { errors: [] };

await withChromium(async (page) => {
  page.on('pageerror', (e) => result.errors.push(String(e)));
  page.on('dialog', (d) => d.accept());
  await page.goto(url + '/login');
  await page.fill('#user', user);
  await page.fill('#password', pw);
  await Promise.all([page.waitForLoadState('load'), page.click('#signin')]);
  await go(page, 'meetings');
  await page.waitForSelector('#meeting-create:not([hidden])', { timeout: 15000 });
  await page.fill('#m-alias', 'townhall');
  await page.fill('#m-host', '2468');
  // SSO for everyone: a device, which cannot sign in, waits for a Host.
  await page.selectOption('#m-auth', 'both');
  await page.fill('#m-group', 'staff');
  await page.click('#m-create');
  await page.waitForSelector('#invitation:not([hidden])', { timeout: 15000 });
  const inv = {
    uri: await page.textContent('#inv-uri'),
    key: await page.textContent('#inv-key'),
    mail: await page.inputValue('#invitation-mail'),
    copies: await page.$$eval('#invitation button[data-copy]', (b) => b.length),
  };
  await page.screenshot({ path: path.join(out, 'invitation.png'), fullPage: false });
  // Written whole, then renamed: the test waits for the file to appear.
  fs.writeFileSync(path.join(out, 'invitation.json.tmp'), JSON.stringify(inv));
  fs.renameSync(path.join(out, 'invitation.json.tmp'), path.join(out, 'invitation.json'));
  // The test joins as a device now; the row shows it without a reload.
  const waiter = 'tr[data-meeting="townhall"] .waiter';
  await page.waitForSelector(waiter, { timeout: 30000 });
  result.waiter = await page.textContent(waiter);
  await page.click(waiter + ' button[data-action="admit"]');
  await page.waitForFunction(() => /admitted/.test(document.getElementById('meeting-message').textContent),
                             null, { timeout: 15000 });
  result.admitMessage = await page.textContent('#meeting-message');
  await page.waitForSelector('tr[data-meeting="townhall"] ul.participants li', { timeout: 30000 });
  result.participants = await page.$$eval('tr[data-meeting="townhall"] ul.participants li',
                                          (l) => l.map((x) => x.textContent));
  await page.click('tr[data-meeting="townhall"] button[data-action="end"]');
  await page.waitForSelector('tr[data-meeting="townhall"] button[data-action="reopen"]',
                             { timeout: 15000 });
  result.endMessage = await page.textContent('#meeting-message');
  result.state = await page.textContent('tr[data-meeting="townhall"] td:nth-child(2)');
  await page.screenshot({ path: path.join(out, 'meetings-ended.png'), fullPage: true });
});
console.log(JSON.stringify(result));
