// The System page's list of appliances (share-config on): signs in, opens
// System, waits until every named appliance is listed, and reports each
// row's cells and the note above the table; saves a PNG of the page.
// usage: node admin_cluster.mjs URL USER PASSWORD SHOT NAME...
import { go, signIn, withChromium } from './chromium.mjs';

const [url, user, pw, shot, ...names] = process.argv.slice(2);
const result = { errors: [], rows: {} };

await withChromium(async (page) => {
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await signIn(page, url, user, pw);
  await go(page, 'system');
  await page.waitForFunction((want) => want.every(
    (n) => document.querySelector('#cluster-table tr[data-appliance="' + n + '"]')),
  names, { timeout: 15000 });
  result.note = await page.textContent('#cluster-note');
  result.boxVisible = await page.$eval('#cluster-box', (b) => !b.hidden && b.offsetHeight > 0);
  result.rows = await page.$$eval('#cluster-table tbody tr', (trs) => Object.fromEntries(
    trs.map((tr) => [tr.dataset.appliance, [...tr.children].map((td) => td.textContent)])));
  await page.screenshot({ path: shot, fullPage: true });
});
console.log(JSON.stringify(result));
