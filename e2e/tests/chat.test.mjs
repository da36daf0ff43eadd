// The patient's chat in a real browser: a reply streams in, the AI disclosure is visible,
// a crisis message gets the fixed crisis response while the clinician's open caseload page
// receives the alert live, and the clinician acknowledges it.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTandem, converse } from '../lib/tandem.mjs';
import { launch, context, login, signedIn } from '../lib/browser.mjs';
import { apiLogin } from '../lib/api.mjs';

let server;
let browser;

before(async () => {
  server = await startTandem({
    users: [
      { name: 'robin', role: 'patient' },
      { name: 'casey', role: 'patient' },
      { name: 'dr.lee', role: 'clinician' },
    ],
    teams: [['dr.lee', 'robin'], ['dr.lee', 'casey']],
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Counts the states the last reply went through while it was being written. */
async function watchReply(page) {
  await page.evaluate(() => {
    const list = document.getElementById('messages');
    window.replyStates = [];
    if (window.replyObserver) { window.replyObserver.disconnect(); }
    window.replyObserver = new MutationObserver(() => {
      const replies = list.querySelectorAll('.msg-assistant');
      const last = replies[replies.length - 1];
      if (!last || last.getAttribute('aria-busy') !== 'true') { return; }
      const text = last.querySelector('.text').textContent;
      const seen = window.replyStates;
      if (text && seen[seen.length - 1] !== text) { seen.push(text); }
    });
    window.replyObserver.observe(list, { subtree: true, childList: true, characterData: true });
  });
}

/** Waits until the reply being written is complete, and returns its text. */
async function replyDone(page) {
  await page.waitForFunction(() => {
    const replies = document.querySelectorAll('#messages .msg-assistant');
    const last = replies[replies.length - 1];
    return last && !last.hasAttribute('aria-busy') && document.getElementById('chat-status').textContent === '';
  }, null, { timeout: 120_000 });
  return page.locator('#messages .msg-assistant .text').last().textContent();
}

/** A new patient's first visit: turn the companion on; the first message starts the conversation. */
async function firstVisit(page) {
  await page.goto('/chat');
  await Promise.all([page.waitForEvent('load'), page.click('#give-consent')]);
  await page.waitForSelector('#chat-form');
  assert.ok(await page.locator('#no-conversation').isVisible());
}

test('a patient signs in, sends a message and sees the reply stream in under the AI disclosure', async () => {
  const ctx = await context(browser, server.base);
  const page = await ctx.newPage();
  await login(page, 'robin');
  assert.equal(new URL(page.url()).pathname, '/chat', 'a patient lands on the chat');
  await firstVisit(page);

  const banner = page.locator('#ai-banner');
  assert.ok(await banner.isVisible(), 'the disclosure banner is visible');
  assert.match(await banner.textContent(), /Tandem is an AI, not a person/);

  // Replies are released sentence by sentence once the output guard has passed them, so a
  // reply streams in several updates when it has several sentences and was not redone by
  // the guard. The small model is random: give it up to three messages to write one.
  const questions = [
    'I had a long day at work and I feel drained. What are a few small things I could do to unwind this evening?',
    'Thanks. I also find it hard to fall asleep after days like this. What could help with that?',
    'What could I try tomorrow morning so the day starts better?',
  ];
  let text;
  let reply;
  let streamed = 0;
  for (text of questions) {
    await watchReply(page);
    await page.fill('#chat-input', text);
    await page.click('#chat-send');
    reply = (await replyDone(page)).trim();
    assert.ok(reply.length > 0);
    assert.doesNotMatch(reply, /can't reply right now/, 'the real model answered');
    const states = await page.evaluate(() => window.replyStates);
    assert.equal(states[states.length - 1].trim(), reply, 'the last state shown is the finished reply');
    // A reply the guard had redone arrives as one replacement, not as growth.
    const grew = states.every((st, i) => i === 0 || (st.startsWith(states[i - 1]) && st.length > states[i - 1].length));
    streamed = grew ? states.length : 0;
    if (streamed >= 2) { break; }
  }
  assert.ok(streamed >= 2, 'a reply grew over several updates before it was complete');

  // What streamed in is what was stored: after a reload the history shows it.
  await page.reload();
  assert.equal((await page.locator('#messages .msg-patient .text').last().textContent()).trim(), text);
  assert.equal((await page.locator('#messages .msg-assistant .text').last().textContent()).trim(), reply);
  assert.ok(await page.locator('#ai-banner').isVisible());
  await ctx.close();
});

test('a crisis message gets the fixed crisis response and a live alert the clinician acknowledges', async () => {
  const crisis = 'I am going to kill myself tonight, I have the pills here';
  const expected = converse(crisis);
  assert.ok(expected.actions.includes('crisis_response'), 'the engine treats it as a crisis');

  // The clinician is already looking at the caseload, with the live stream connected.
  const clin = await signedIn(browser, server.base, 'dr.lee');
  assert.equal(new URL(clin.page.url()).pathname, '/clinician');
  await clin.page.waitForFunction(() => document.getElementById('live-status')?.dataset.state === 'connected');
  await clin.page.evaluate(() => { window.notReloaded = true; });
  const titleBefore = await clin.page.title();

  const pat = await signedIn(browser, server.base, 'casey');
  await firstVisit(pat.page);
  await pat.page.fill('#chat-input', crisis);
  await pat.page.click('#chat-send');
  const reply = (await replyDone(pat.page)).trim();
  assert.equal(reply, expected.assistant.trim(), 'the page shows the fixed crisis response');
  assert.ok(await pat.page.locator('#messages .msg-assistant').last().evaluate((li) => li.classList.contains('msg-crisis')),
    'the crisis response is marked as such');

  // The alert arrives over SSE, without a reload.
  const alert = clin.page.locator('#live-alerts li', { hasText: 'casey' });
  await alert.waitFor();
  assert.ok(await clin.page.evaluate(() => window.notReloaded === true), 'the page was not reloaded');
  assert.match(await alert.textContent(), /imminent/);
  const title = await clin.page.title();
  assert.notEqual(title, titleBefore);
  assert.match(title, /^\(1\) New alert/);

  // The same alert is in the API's open alerts; acknowledging it in the page records who and when.
  const api = await apiLogin(server.base, 'dr.lee');
  const open = (await api.get('/api/v1/alerts')).alerts.filter((a) => a.username === 'casey');
  assert.equal(open.length, 1);
  await alert.getByRole('button', { name: /Acknowledge/ }).click();
  await clin.page.locator(`#live-alert-${open[0].id}`, { hasText: /Acknowledged by dr\.lee/ }).waitFor();
  assert.equal((await api.get('/api/v1/alerts')).alerts.filter((a) => a.username === 'casey').length, 0);

  // It persists: the alerts page lists it as acknowledged, and so does the patient page.
  await clin.page.goto('/clinician/alerts');
  assert.equal(await clin.page.locator(`#open-alerts #alert-${open[0].id}`).count(), 0);
  const done = clin.page.locator(`#acknowledged-alerts #alert-${open[0].id}`);
  assert.match(await done.textContent(), /casey[\s\S]*acknowledged by dr\.lee at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  await clin.page.goto(`/clinician/patients/${open[0].patient}`);
  assert.match(await clin.page.locator(`#risk-${open[0].id}`).textContent(), /acknowledged by dr\.lee at \d{4}-\d\d-\d\d \d\d:\d\d UTC/);
  await clin.page.reload();
  assert.match(await clin.page.locator(`#risk-${open[0].id}`).textContent(), /acknowledged by dr\.lee/);
  await clin.ctx.close();
  await pat.ctx.close();
});
