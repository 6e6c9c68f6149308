// Which configuration runs, as the admin page says it at the top of every
// page: signs in, opens Home and System, and reports the banner's class and
// text on each (the test has left a hand-edited file whose reload was
// refused, so the banner must say the file's version is not running).
// usage: node admin_running.mjs URL USER PASSWORD
import { go, signIn, withChromium } from './chromium.mjs';

const [url, user, pw] = process.argv.slice(2);
const result = { errors: [], pages: {} };

await withChromium(async (page) => {
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await signIn(page, url, user, pw);
  for (const id of ['home', 'system']) {
    await go(page, id);
    await page.waitForFunction(() => document.getElementById('running').textContent !== '',
                               null, { timeout: 10000 });
    result.pages[id] = await page.$eval('#running', (p) => ({
      cls: p.className, text: p.textContent, visible: p.offsetHeight > 0 }));
  }
});
console.log(JSON.stringify(result));
