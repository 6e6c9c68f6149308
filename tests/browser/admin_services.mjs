// The Services page as an admin sees it: each service's status, pool health
// and on/off switch (from the live statistics, in place). Reports the rows,
// switches service NAME on, waits for the page to say so and for its status
// to become "up", and reports the rows again.
// usage: node admin_services.mjs URL USER PASSWORD NAME
import { go, signIn, withChromium } from './chromium.mjs';

const [url, user, pw, name] = process.argv.slice(2);
const result = { errors: [] };

const rows = (page) => page.$$eval('#svc-table tr[data-service]', (trs) => trs.map((tr) => {
  const box = tr.querySelector('.svc-switch input');
  return { name: tr.dataset.service, status: tr.querySelector('.svc-status').textContent,
           pool: tr.querySelector('.svc-pool').textContent, on: box.checked,
           disabled: box.disabled, title: box.title };
}));

await withChromium(async (page) => {
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await signIn(page, url, user, pw);
  await go(page, 'services');
  await page.waitForFunction(() => [...document.querySelectorAll('#svc-table .svc-status')]
    .every((td) => td.textContent !== ''), null, { timeout: 10000 });
  result.before = await rows(page);
  const sel = '#svc-table tr[data-service="' + name + '"] .svc-switch input';
  await page.click(sel);
  await page.waitForFunction(() => /turned on/.test(
    document.getElementById('svc-message').textContent), null, { timeout: 10000 });
  result.message = await page.$eval('#svc-message', (p) => p.textContent);
  await page.waitForFunction((n) => {
    const tr = document.querySelector('#svc-table tr[data-service="' + n + '"]');
    return tr && tr.querySelector('.svc-status').textContent === 'up';
  }, name, { timeout: 15000 });
  result.after = await rows(page);
});
console.log(JSON.stringify(result));
