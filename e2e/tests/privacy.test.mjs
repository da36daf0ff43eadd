// A patient cannot reach another patient's record by typing URLs, and a clinician outside
// the care team gets the emergency-access form, never the record.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTandem } from '../lib/tandem.mjs';
import { launch, signedIn } from '../lib/browser.mjs';
import { apiLogin } from '../lib/api.mjs';

let server;
let browser;
let victim; // what the other patient has, as the test knows it
const SECRET = 'My sister Marguerite does not know about the overdraft';

before(async () => {
  server = await startTandem({
    users: [
      { name: 'nosy', role: 'patient' },
      { name: 'quinn', role: 'patient' },
      { name: 'dr.shaw', role: 'clinician' },
      { name: 'dr.out', role: 'clinician' },
    ],
    teams: [['dr.shaw', 'quinn'], ['dr.shaw', 'nosy']],
  });
  browser = await launch();
  const quinn = await apiLogin(server.base, 'quinn');
  const conversation = await quinn.startChatting();
  await quinn.say(conversation, SECRET);
  await quinn.call('POST', '/api/v1/mood', { rating: 3, words: ['worried'] }, 201);
  const shaw = await apiLogin(server.base, 'dr.shaw');
  const item = (await shaw.call('POST', `/api/v1/patients/${quinn.id}/care-plan/items`,
    { kind: 'goal', text: 'Talk to Marguerite about money' }, 201)).json.id;
  victim = { id: quinn.id, conversation, item };
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Nothing of the other patient's record is in this text. */
function assertNoVictimData(text, where) {
  for (const needle of ['quinn', 'Marguerite', 'overdraft', 'worried', victim.conversation, victim.item]) {
    assert.ok(!text.includes(needle), `${where} shows "${needle}" of another patient`);
  }
}

test("a patient typing another patient's page and API URLs is refused and sees none of their data", async () => {
  const { ctx, page } = await signedIn(browser, server.base, 'nosy');
  const pages = [
    [`/clinician/patients/${victim.id}`, 403],
    [`/clinician/patients/${victim.id}/conversations/${victim.conversation}`, 403],
    [`/clinician/patients/${victim.id}?reason=emergency%20please`, 403],
  ];
  for (const [url, status] of pages) {
    const resp = await page.goto(url);
    assert.equal(resp.status(), status, url);
    assert.match(await page.locator('h1').textContent(), /Sorry: 403/, `${url} shows the refusal page`);
    assertNoVictimData(await page.content(), url);
  }
  const api = [
    [`/api/v1/patients/${victim.id}`, 403],
    [`/api/v1/patients/${victim.id}/conversations/${victim.conversation}/messages`, 403],
    [`/api/v1/patients/${victim.id}/measures/phq9/chart.svg`, 403],
    // The patient API has no patient ids; someone else's conversation is "not found".
    [`/api/v1/conversations/${victim.conversation}/messages`, 404],
  ];
  for (const [url, status] of api) {
    // Typed into the address bar, with the patient's own session cookie.
    const resp = await page.goto(url);
    assert.equal(resp.status(), status, url);
    assertNoVictimData(await resp.text(), url);
  }
  // Sending into someone else's conversation from the page's own script is refused too.
  await page.goto('/chat');
  const posted = await page.evaluate(async (cid) => {
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const r = await fetch(`/api/v1/conversations/${cid}/messages`, {
      method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ text: 'hello' }),
    });
    return { status: r.status, body: await r.text() };
  }, victim.conversation);
  assert.equal(posted.status, 404);
  assertNoVictimData(posted.body, 'POST to another conversation');

  // Their own pages show only their own record.
  await page.goto('/chat');
  assertNoVictimData(await page.content(), '/chat');
  await page.goto('/my-data');
  const exported = await page.evaluate(async () => (await fetch('/api/v1/me/export')).text());
  assertNoVictimData(exported, 'the export');
  await ctx.close();
});

test('a clinician outside the care team gets the emergency-access form, not the record', async () => {
  const { ctx, page } = await signedIn(browser, server.base, 'dr.out');
  const resp = await page.goto(`/clinician/patients/${victim.id}`);
  assert.equal(resp.status(), 403);
  assert.ok(await page.locator('#break-glass-form').isVisible());
  assertNoVictimData(await page.content(), 'the emergency-access form');
  const conv = await page.goto(`/clinician/patients/${victim.id}/conversations/${victim.conversation}`);
  assert.equal(conv.status(), 403);
  assertNoVictimData(await page.content(), 'the conversation page');
  await page.goto('/clinician');
  assertNoVictimData(await page.locator('#caseload').textContent(), 'the caseload');
  await ctx.close();
});
