// Every page a patient, a clinician and an admin can reach: axe-core (WCAG 2.0, 2.1 and 2.2,
// A and AA) finds no serious or critical violation, nothing scrolls sideways on a 390 px
// phone or on a desktop, and the navigation and the crisis link are on screen. The sign-in
// form and the chat work with the keyboard alone, with focus always visible.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTandem } from '../lib/tandem.mjs';
import {
  launch, context, signedIn, assertAccessible, assertNoHorizontalOverflow, PHONE, DESKTOP, AXE_CONTEXT,
} from '../lib/browser.mjs';
import { apiLogin } from '../lib/api.mjs';

let server;
let browser;
const w = {}; // ids the page list needs
const sessions = {};

before(async () => {
  server = await startTandem({
    users: [
      { name: 'jordan', role: 'patient' },
      { name: 'kit', role: 'patient' },
      { name: 'dr.osei', role: 'clinician' },
      { name: 'dr.far', role: 'clinician' },
      { name: 'root.admin', role: 'admin' },
    ],
    teams: [['dr.osei', 'jordan'], ['dr.osei', 'kit']],
  });
  browser = await launch();

  // A patient with something on every page: a conversation (with a crisis alert), a mood
  // check-in, a questionnaire (chart), a care plan, an exercise under way, a talk request.
  const jordan = await apiLogin(server.base, 'jordan');
  w.patient = jordan.id;
  w.conversation = await jordan.startChatting();
  await jordan.say(w.conversation, 'I have been sleeping badly and worrying about exams.');
  await jordan.say(w.conversation, 'Sometimes I think everyone would be better off without me.');
  await jordan.call('POST', '/api/v1/mood', { rating: 4, words: ['tired', 'anxious'] }, 201);
  await jordan.call('POST', '/api/v1/measures/PHQ-9', { answers: [1, 2, 1, 2, 1, 1, 0, 1, 0] }, 201);
  await jordan.call('POST', '/api/v1/exercises', { kind: 'thought_record' }, 201);
  await jordan.call('POST', '/api/v1/talk-requests', { note: 'Can we talk before Friday?' }, 201);
  const clin = await apiLogin(server.base, 'dr.osei');
  await clin.call('POST', `/api/v1/patients/${w.patient}/care-plan/items`, { kind: 'goal', text: 'Study in 25 minute blocks' }, 201);
  await clin.call('POST', `/api/v1/patients/${w.patient}/care-plan/items`, { kind: 'homework', text: 'Keep a sleep diary' }, 201);
  await clin.call('PUT', `/api/v1/patients/${w.patient}/measure-schedules`, { instrument: 'GAD-7', every_days: 14 }, 204);
  const kit = await apiLogin(server.base, 'kit');
  const kc = await kit.startChatting();
  await kit.say(kc, 'I am going to kill myself tonight, I have the pills here');

  sessions.patient = await signedIn(browser, server.base, 'jordan', AXE_CONTEXT);
  sessions.clinician = await signedIn(browser, server.base, 'dr.osei', AXE_CONTEXT);
  sessions.outsider = await signedIn(browser, server.base, 'dr.far', AXE_CONTEXT);
  sessions.admin = await signedIn(browser, server.base, 'root.admin', AXE_CONTEXT);
  const anon = await context(browser, server.base, AXE_CONTEXT);
  sessions.anonymous = { ctx: anon, page: await anon.newPage() };
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

// [who, page name, path]
const PAGES = [
  ['anonymous', 'sign-in', () => '/login'],
  ['anonymous', 'crisis resources', () => '/crisis'],
  ['patient', 'chat', () => '/chat'],
  ['patient', 'mood check-in', () => '/mood'],
  ['patient', 'questionnaires', () => '/measures'],
  ['patient', 'a questionnaire form', () => '/measures/PHQ-9'],
  ['patient', 'exercises', () => '/exercises'],
  ['patient', 'my progress', () => '/progress'],
  ['patient', 'my care plan', () => '/care-plan'],
  ['patient', 'my data', () => '/my-data'],
  ['patient', 'crisis resources', () => '/crisis'],
  ['patient', 'account security', () => '/account/security'],
  ['clinician', 'caseload', () => '/clinician'],
  ['clinician', 'alerts', () => '/clinician/alerts'],
  ['clinician', 'patient page', () => `/clinician/patients/${w.patient}`],
  ['clinician', 'conversation', () => `/clinician/patients/${w.patient}/conversations/${w.conversation}`],
  ['clinician', 'account security', () => '/account/security'],
  ['clinician', 'crisis resources', () => '/crisis'],
  ['outsider', 'emergency access form', () => `/clinician/patients/${w.patient}`],
  ['admin', 'accounts', () => '/admin'],
  ['admin', 'account security', () => '/account/security'],
  ['patient', 'an error page', () => '/clinician'],
];

/** The navigation links and the crisis link are shown, inside the viewport. */
async function assertNavigationReachable(page, label) {
  const links = ['#crisis-link'];
  if (await page.locator('nav[aria-label="Main"]').count()) { links.push('nav[aria-label="Main"] a'); }
  const width = page.viewportSize().width;
  for (const sel of links) {
    const all = page.locator(sel);
    const n = await all.count();
    assert.ok(n > 0, `${label}: ${sel} is on the page`);
    for (let i = 0; i < n; i++) {
      const el = all.nth(i);
      assert.ok(await el.isVisible(), `${label}: ${sel} #${i} is visible`);
      const box = await el.boundingBox();
      assert.ok(box.x >= 0 && box.x + box.width <= width + 0.5, `${label}: ${sel} #${i} is inside the ${width} px viewport`);
      assert.ok(box.height >= 24 && box.width >= 24, `${label}: ${sel} #${i} is at least 24 px square (${box.width}x${box.height})`);
    }
  }
  assert.equal(await page.locator('#crisis-link').getAttribute('href'), '/crisis');
}

for (const [who, name, path] of PAGES) {
  test(`${who}: ${name} is accessible and fits a phone and a desktop`, async () => {
    const { page } = sessions[who];
    for (const viewport of [PHONE, DESKTOP]) {
      const label = `${name} as ${who} at ${viewport.width} px`;
      await page.setViewportSize(viewport);
      await page.goto(path());
      // Open every disclosure, so what it hides is checked too.
      await page.evaluate(() => document.querySelectorAll('details').forEach((d) => { d.open = true; }));
      await assertAccessible(page, label);
      await assertNoHorizontalOverflow(page, label);
      await assertNavigationReachable(page, label);
    }
  });
}

/** Presses Tab until `selector` has the focus; every stop on the way shows its focus. */
async function tabTo(page, selector, max = 40) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate((sel) => {
      const el = document.activeElement;
      const cs = getComputedStyle(el);
      return {
        match: el.matches(sel),
        visible: el.matches(':focus-visible') && cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2,
        what: `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''} "${(el.textContent || '').trim().slice(0, 30)}"`,
      };
    }, selector);
    assert.ok(f.visible, `focus is visible on ${f.what}`);
    if (f.match) { return; }
  }
  assert.fail(`${selector} was not reached with ${max} presses of Tab`);
}

test('the sign-in form and the chat work with the keyboard alone', async () => {
  const ctx = await context(browser, server.base, { viewport: PHONE });
  const page = await ctx.newPage();
  await page.goto('/login');

  // The first Tab reaches the skip link; Enter moves to the main content.
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.className), 'skip-link');
  assert.ok(await page.locator('.skip-link').isVisible(), 'the focused skip link is shown');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'main');

  await tabTo(page, '#username');
  await page.keyboard.type('kit');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'password');
  await page.keyboard.type('a long test password 42');
  await Promise.all([page.waitForURL(/\/chat$/), page.keyboard.press('Enter')]);

  await tabTo(page, '#chat-input');
  await page.keyboard.type('Thank you. I called the crisis line and my sister is with me now.');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'chat-send');
  const before = await page.locator('#messages .msg-assistant').count();
  await page.keyboard.press('Enter');
  await page.waitForFunction((n) => {
    const all = document.querySelectorAll('#messages .msg-assistant');
    return all.length > n && !all[all.length - 1].hasAttribute('aria-busy');
  }, before, { timeout: 120_000 });
  assert.match(await page.locator('#messages .msg-patient .text').last().textContent(), /my sister is with me/);
  assert.ok((await page.locator('#messages .msg-assistant .text').last().textContent()).trim().length > 0);

  // The talk-to-my-clinician button is reachable and works from the keyboard too.
  await tabTo(page, '#talk-to-clinician');
  await page.keyboard.press('Enter');
  await page.locator('#talk-form [data-status]', { hasText: 'care team has been asked' }).waitFor();
  await ctx.close();
});
