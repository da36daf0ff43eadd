// Progressive enhancement: with JavaScript off, signing in, the chat (with its safety layer),
// the mood check-in and signing out still work as plain forms; no form puts what was typed into the URL, and a form that
// needs the script says so.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTandem, PASSWORD } from '../lib/tandem.mjs';
import { launch, context } from '../lib/browser.mjs';
import { apiLogin } from '../lib/api.mjs';

let server;
let browser;

before(async () => {
  server = await startTandem({ users: [{ name: 'morgan', role: 'patient' }] });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('without JavaScript a patient signs in, chats (a crisis gets the crisis response), checks in their mood and signs out', async () => {
  const ctx = await context(browser, server.base, { javaScriptEnabled: false });
  const page = await ctx.newPage();
  await page.goto('/login');
  await page.fill('#username', 'morgan');
  await page.fill('#password', 'not the password');
  await page.click('#login-submit');
  assert.match(await page.locator('#login-error').textContent(), /did not match/);

  await page.fill('#username', 'morgan');
  await page.fill('#password', PASSWORD);
  await Promise.all([page.waitForURL(/\/chat$/), page.click('#login-submit')]);
  assert.ok(await page.locator('#ai-banner').isVisible());

  await page.goto('/mood');
  await page.fill('#mood-rating', '11');
  // The browser's own validation (max=10) stops an out-of-range rating before it is sent.
  await page.click('#mood-submit');
  assert.equal(new URL(page.url()).pathname, '/mood');
  assert.equal(await page.locator('#mood-history li').count(), 0);

  await page.fill('#mood-rating', '7');
  await page.fill('#mood-words', 'hopeful, tired');
  await Promise.all([page.waitForURL(/\/mood$/), page.click('#mood-submit')]);
  assert.equal(new URL(page.url()).search, '', 'nothing typed went into the URL');
  const saved = page.locator('#mood-history li').first();
  assert.match(await saved.textContent(), /7\/10 \(hopeful, tired\)/);
  const api = await apiLogin(server.base, 'morgan');
  const moods = (await api.get('/api/v1/mood')).moods;
  assert.equal(moods.length, 1);
  assert.equal(moods[0].rating, 7);
  assert.deepEqual(moods[0].words, ['hopeful', 'tired']);

  // The chat works as a plain form too, so every message still passes the safety layer:
  // a crisis gets the fixed crisis response in the history after the page reloads.
  await page.goto('/chat');
  await page.fill('#chat-input', 'I am going to kill myself tonight, I have the pills here');
  await Promise.all([page.waitForURL(/\/chat(#m-[0-9a-f-]+)?$/), page.click('#chat-send')]);
  assert.equal(new URL(page.url()).search, '', 'nothing typed went into the URL');
  assert.match(await page.locator('#messages .msg-patient .text').last().textContent(), /kill myself tonight/);
  assert.match(await page.locator('#messages .msg-assistant .text').last().textContent(), /988/);
  const convs = (await api.get('/api/v1/conversations')).conversations;
  assert.equal(convs.length, 1, 'the first plain-form message started the conversation');

  // Every form on the patient's pages posts (nothing typed lands in a URL or the history).
  for (const path of ['/chat', '/mood', '/exercises', '/my-data', '/measures/PHQ-9', '/account/security']) {
    await page.goto(path);
    const methods = await page.locator('form').evaluateAll((forms) => forms.map((f) => f.method));
    assert.ok(methods.length > 0);
    assert.deepEqual(methods.filter((m) => m !== 'post'), [], `${path}: every form posts`);
  }

  // A form that needs the script says so, and what was typed stays out of the URL.
  await page.goto('/my-data');
  await page.fill('#delete-password', PASSWORD);
  await page.fill('#delete-confirm', 'delete my account');
  const [resp] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST'), page.click('#delete-account')]);
  assert.equal(resp.status(), 405);
  await page.locator('#error-message', { hasText: 'needs JavaScript' }).waitFor();
  assert.equal(new URL(page.url()).search, '');
  assert.ok(!page.url().includes('delete'), 'nothing typed is in the URL');
  assert.equal((await api.get('/api/v1/me')).username, 'morgan', 'the account is still there');

  await page.goto('/mood');
  await Promise.all([page.waitForURL(/\/login$/), page.click('#logout')]);
  await page.goto('/mood');
  assert.equal(new URL(page.url()).pathname, '/login', 'signed out');
  await ctx.close();
});
