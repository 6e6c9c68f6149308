// Drives Debian's chromium (headless, fresh profile) through the conference
// application's join page: fill in the invitation, join, let the page
// download and decrypt every resource with WebCrypto, and report what the
// page shows (each slide as rendered, each image also as a screenshot of its
// element), every console error and CSP violation, and a screenshot.
// usage: node join.mjs URL URI KEY PIN NAME SCREENSHOT.png [ALIAS]
// With ALIAS, the Virtual Reception page (/reception) instead of /join.
import { withChromium } from './chromium.mjs';

const [url, uri, key, pin, name, shot, alias] = process.argv.slice(2);
const result = { errors: [], csp: [] };
await withChromium(async (page) => {
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(m.text()); });
  page.on('pageerror', (e) => result.errors.push(String(e)));
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation',
      (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
  });
  const resp = await page.goto(url + (alias ? '/reception' : '/join'));
  result.csp_header = resp.headers()['content-security-policy'] || '';
  if (alias) {
    await page.fill('#alias', alias);
  } else {
    await page.fill('#uri', uri);
    await page.fill('#key', key);
  }
  await page.fill('#pin', pin);
  await page.fill('#name', name);
  await page.click('#go');
  await page.waitForFunction(() => document.body.dataset.done, null, { timeout: 30000 });
  result.done = await page.evaluate(() => document.body.dataset.done);
  result.status = await page.textContent('#status');
  result.secure = await page.evaluate(() => window.isSecureContext);
  result.digests = await page.$$eval('.sha256',
    (els) => els.map((e) => ({ name: e.dataset.name, sha256: e.textContent })));
  result.failed = await page.$$eval('li.failed', (els) => els.map((e) => e.textContent));
  result.downloads = await page.$$eval('a[download]', (els) => els.length);
  result.stored = await page.evaluate(() => Object.keys(localStorage).length +
                                              Object.keys(sessionStorage).length);
  result.csp = await page.evaluate(() => window.__csp);
  // Each rendered slide: what the page made of it; every image also as a
  // screenshot of its element alone (SHOT-N.png), to compare with the file.
  result.slides = await page.$$eval('figure.slide', (figs) => figs.map((f) => {
    const img = f.querySelector('img');
    const embed = f.querySelector('embed');
    return { name: f.dataset.name, type: f.dataset.type,
             natural: img ? [img.naturalWidth, img.naturalHeight] : null,
             src: img ? img.src : embed ? embed.src : null,
             text: f.querySelector('pre') ? f.querySelector('pre').textContent.slice(0, 200) : null };
  }));
  const imgs = await page.$$('figure.slide img');
  result.shots = [];
  for (let i = 0; i < imgs.length; i++) {
    const p = shot.replace(/\.png$/, '-' + i + '.png');
    // The image's own pixels: its box, snapped to whole pixels as Chromium
    // paints images (a fractional line height would add a row otherwise).
    const bb = await imgs[i].boundingBox();
    await imgs[i].scrollIntoViewIfNeeded();
    const [w, h] = await imgs[i].evaluate((e) => [e.naturalWidth, e.naturalHeight]);
    await page.screenshot({ path: p, fullPage: true,
                            clip: { x: Math.round(bb.x), y: Math.round(bb.y), width: w, height: h } });
    result.shots.push({ name: await imgs[i].evaluate((e) => e.parentNode.dataset.name), path: p });
  }
  await page.screenshot({ path: shot, fullPage: true });
});
console.log(JSON.stringify(result));
