// My data: the patient downloads everything held about them (a real download), then
// deletes their account after confirming, and can no longer sign in.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startTandem, PASSWORD } from '../lib/tandem.mjs';
import { launch, context, signedIn } from '../lib/browser.mjs';
import { apiLogin } from '../lib/api.mjs';

let server;
let browser;

before(async () => {
  server = await startTandem({
    users: [
      { name: 'alex', role: 'patient' },
      { name: 'dr.kay', role: 'clinician' },
    ],
    teams: [['dr.kay', 'alex']],
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a patient downloads their data, deletes their account after confirming, and cannot sign in again', async () => {
  const api = await apiLogin(server.base, 'alex');
  const conversation = await api.startChatting();
  const said = 'The new medication makes me sleepy in the mornings.';
  const done = await api.say(conversation, said);
  await api.call('POST', '/api/v1/mood', { rating: 4, words: ['sleepy'] }, 201);

  const { ctx, page } = await signedIn(browser, server.base, 'alex');
  await page.goto('/my-data');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-link')]);
  assert.equal(download.suggestedFilename(), 'tandem-export.json');
  const exported = JSON.parse(await readFile(await download.path(), 'utf8'));
  const texts = JSON.stringify(exported);
  assert.ok(texts.includes(said), 'the export holds the message the patient sent');
  assert.ok(texts.includes(done.reply.slice(0, 40)), "the export holds the companion's reply");
  assert.ok(texts.includes('sleepy'), 'the export holds the mood check-in');
  assert.ok(texts.includes(api.id), 'the export is about this patient');

  // A wrong confirmation deletes nothing.
  await page.fill('#delete-password', PASSWORD);
  await page.fill('#delete-confirm', 'delete');
  await page.click('#delete-account');
  await page.locator('#delete-form [data-status].error', { hasText: 'delete my account' }).waitFor();
  assert.equal(new URL(page.url()).pathname, '/my-data');

  // Confirmed: the account goes and the browser lands on the sign-in page.
  await page.fill('#delete-confirm', 'delete my account');
  await Promise.all([page.waitForURL(/\/login$/), page.click('#delete-account')]);

  // The old session is gone, and so is the account.
  const chat = await page.goto('/chat');
  assert.equal(new URL(chat.url()).pathname, '/login');
  const fresh = await context(browser, server.base);
  const again = await fresh.newPage();
  await again.goto('/login');
  await again.fill('#username', 'alex');
  await again.fill('#password', PASSWORD);
  await again.click('#login-submit');
  await again.locator('#login-error').waitFor();
  assert.equal(new URL(again.url()).pathname, '/login');
  assert.match(await again.locator('#login-error').textContent(), /did not match/);
  const r = await fetch(`${server.base}/login`, {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ username: 'alex', password: PASSWORD }),
  });
  assert.equal(r.status, 401);

  // The clinician's caseload no longer has them.
  const clin = await signedIn(browser, server.base, 'dr.kay');
  assert.equal(await clin.page.locator('#caseload tbody tr').count(), 0);
  await clin.ctx.close();
  await fresh.close();
  await ctx.close();
});
