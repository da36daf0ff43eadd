// Headless Chromium (Debian's package) through playwright-core, plus the helpers every
// browser test uses: sign in through the real form, run axe-core, measure overflow.

import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { PASSWORD } from './tandem.mjs';

const require = createRequire(import.meta.url);
export const AXE_PATH = require.resolve('axe-core/axe.min.js');

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 900 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking'],
  });
}

/** A fresh browser context (its own cookies) on `base`. */
export async function context(browser, base, opts = {}) {
  const ctx = await browser.newContext({ baseURL: base, viewport: DESKTOP, acceptDownloads: true, ...opts });
  ctx.setDefaultTimeout(30_000);
  return ctx;
}

/** Signs in through the /login form and waits for the landing page. */
export async function login(page, username, password = PASSWORD) {
  await page.goto('/login');
  await page.fill('#username', username);
  await page.fill('#password', password);
  await Promise.all([
    page.waitForURL((u) => !u.pathname.startsWith('/login')),
    page.click('#login-submit'),
  ]);
}

/** A signed-in page for `username` in its own context. */
export async function signedIn(browser, base, username, opts = {}) {
  const ctx = await context(browser, base, opts);
  const page = await ctx.newPage();
  await login(page, username);
  return { ctx, page };
}

/**
 * Context options for pages axe-core will be injected into: the product's CSP rightly
 * refuses injected scripts, so these contexts bypass it. Every other test keeps the CSP,
 * so the product's own scripts are checked against it.
 */
export const AXE_CONTEXT = { bypassCSP: true };

/**
 * Runs axe-core on the page with the WCAG 2.0/2.1/2.2 A and AA rules and fails on any
 * serious or critical violation, naming each rule and the elements it found.
 */
export async function assertAccessible(page, label) {
  await page.addScriptTag({ path: AXE_PATH });
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22a', 'wcag22aa'] },
    });
    return r.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.ok(bad.length === 0, `${label} (${page.url()}): axe found serious or critical violations:\n${
    bad.map((v) => `  ${v.id} [${v.impact}] ${v.help}\n    ${v.targets.join('\n    ')}`).join('\n')}`);
  return result;
}

/** The page is no wider than the viewport (nothing scrolls sideways). */
export async function assertNoHorizontalOverflow(page, label) {
  const m = await page.evaluate(() => {
    const de = document.documentElement;
    const wide = [];
    for (const el of document.body.querySelectorAll('*')) {
      const r = el.getBoundingClientRect();
      if (r.right > window.innerWidth + 0.5 && r.width > 0) {
        wide.push(`${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''} right=${Math.round(r.right)}`);
      }
    }
    return { scrollWidth: de.scrollWidth, innerWidth: window.innerWidth, wide: wide.slice(0, 10) };
  });
  assert.ok(m.scrollWidth <= m.innerWidth,
    `${label} (${page.url()}): ${m.scrollWidth} px wide in a ${m.innerWidth} px viewport; too wide:\n  ${m.wide.join('\n  ')}`);
}
