// Drives two Debian chromium sessions at once against the admin application:
// an admin who types a weight while the statistics refresh (the box and its
// value must survive the polls), and a viewer who leaves the tab alone (the
// page must warn, then be signed out at the idle limit, polling or not).
// usage: node admin_live.mjs URL ADMIN PASSWORD VIEWER PASSWORD OUTDIR
import path from 'node:path';
import { go, withChromium } from './chromium.mjs';

const [url, admin, adminPw, viewer, viewerPw, out] = process.argv.slice(2);
const result = { errors: [] };

async function signIn(page, u, p) {
  await page.goto(url + '/login');
  await page.fill('#user', u);
  await page.fill('#password', p);
  await Promise.all([page.waitForLoadState('load'), page.click('#signin')]);
}

async function typing(page) {
  page.on('pageerror', (e) => result.errors.push('admin: ' + String(e)));
  await signIn(page, admin, adminPw);
  await go(page, 'statistics');
  const box = 'tr[data-server="public/web1"] input.weight';
  await page.waitForSelector(box, { timeout: 15000 });
  // Mark the nodes: a re-render would put new ones in their place.
  await page.evaluate((b) => {
    document.querySelector(b).__mark = 'typed-here';
    document.querySelector('tr[data-server="public/web1"] .state').__mark = 'cell';
  }, box);
  await page.click(box);
  await page.fill(box, '4');
  const before = Number(await page.evaluate(() => document.body.dataset.refreshes));
  await page.waitForFunction((n) => Number(document.body.dataset.refreshes) >= n + 3, before,
                             { timeout: 20000 });
  // Still focused, then not: a blur must not give the value back either.
  result.whileFocused = await page.$eval(box, (e) => [e.value, e.__mark, document.activeElement === e]);
  await page.click('#statistics h1');
  const mid = Number(await page.evaluate(() => document.body.dataset.refreshes));
  await page.waitForFunction((n) => Number(document.body.dataset.refreshes) >= n + 2, mid,
                             { timeout: 20000 });
  result.afterBlur = await page.$eval(box, (e) => [e.value, e.__mark]);
  result.cellKept = await page.$eval('tr[data-server="public/web1"] .state', (e) => e.__mark);
  result.refreshes = Number(await page.evaluate(() => document.body.dataset.refreshes));
  await page.screenshot({ path: path.join(out, 'live-typing.png'), fullPage: false });
}

async function idle(page) {
  page.on('pageerror', (e) => result.errors.push('viewer: ' + String(e)));
  await signIn(page, viewer, viewerPw);
  await go(page, 'statistics');
  const t0 = Date.now();
  await page.waitForSelector('#stats tbody tr', { timeout: 15000 });
  await page.waitForSelector('#idle-warning:not([hidden])', { timeout: 75000 });
  result.warning = await page.textContent('#idle-warning');
  result.warnedAfter = (Date.now() - t0) / 1000;
  await page.screenshot({ path: path.join(out, 'idle-warning.png'), fullPage: false });
  await page.waitForURL(/\/login/, { timeout: 75000 });
  result.signedOutAfter = (Date.now() - t0) / 1000;
  result.loginUrl = page.url();
}

await Promise.all([withChromium(typing), withChromium(idle)]);
console.log(JSON.stringify(result));
