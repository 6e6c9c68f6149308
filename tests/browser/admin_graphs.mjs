// The admin page's graphs in Debian's chromium: the Statistics page draws
// the last hour from /api/v1/stats/history while the test sends traffic;
// waits until service "public" has a request rate above zero, takes a
// screenshot of the graphs, then reads the certificate expiry timeline.
// usage: node admin_graphs.mjs URL USER PASSWORD OUTDIR
import path from 'node:path';
import { go, signIn, withChromium } from './chromium.mjs';

const [url, user, pw, out] = process.argv.slice(2);
const result = { errors: [] };

await withChromium(async (page) => {
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await signIn(page, url, user, pw);
  await go(page, 'statistics');
  const req = '#graphs .service-graphs[data-service="public"] figure.requests';
  await page.waitForFunction((sel) => {
    const f = document.querySelector(sel);
    return f && Number(f.dataset.points) >= 3 && Number(f.dataset.peak) > 0.5;
  }, req, { timeout: 60000 });
  result.requests = await page.$eval(req, (f) => ({ points: Number(f.dataset.points),
    peak: Number(f.dataset.peak), caption: f.querySelector('figcaption').textContent,
    lines: f.querySelectorAll('polyline').length }));
  result.healthLines = await page.$$eval(
    '#graphs .service-graphs[data-service="public"] .health-line',
    (ls) => ls.map((l) => [l.dataset.server, l.querySelectorAll('rect.up').length,
                           l.querySelectorAll('rect.down').length]));
  const g = await page.$('#graphs .service-graphs[data-service="public"]');
  await g.screenshot({ path: path.join(out, 'graphs.png') });
  await go(page, 'certificates');
  result.certBars = await page.$$eval('#cert-timeline rect', (r) => r.length);
});
console.log(JSON.stringify(result));
