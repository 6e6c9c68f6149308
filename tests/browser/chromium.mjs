// Debian's chromium for the browser tests: headless, a fresh profile each
// time (removed afterwards), the flags this machine needs (no sandbox as
// root, no background networking to a closed network).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export async function withChromium(fn) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gh-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    ignoreHTTPSErrors: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync',
           '--disable-dev-shm-usage'],
  });
  try {
    return await fn(ctx.pages()[0] || await ctx.newPage());
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

// The admin page shows one page at a time (/#id): go to one and wait for it.
export async function go(page, id) {
  await page.evaluate((h) => { window.location.hash = h; }, '#' + id);
  await page.waitForSelector('section#' + id + ':not([hidden])', { timeout: 15000 });
}

// Signs in on the admin application's login page; the page is the admin
// page once the sign-in's redirect has loaded.
export async function signIn(page, url, user, pw) {
  await page.goto(url + '/login');
  await page.fill('#user', user);
  await page.fill('#password', pw);
  await Promise.all([page.waitForLoadState('load'), page.click('#signin')]);
}
