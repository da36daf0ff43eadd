// A clinician shapes the companion in the browser (a goal, AI preferences, a measure
// schedule) and the patient's next reply is written with it: its provenance, shown in the
// clinician's conversation view and in the API, names the new care-plan item.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startTandem } from '../lib/tandem.mjs';
import { launch, signedIn } from '../lib/browser.mjs';
import { apiLogin } from '../lib/api.mjs';

let server;
let browser;

before(async () => {
  server = await startTandem({
    users: [
      { name: 'sam', role: 'patient' },
      { name: 'dr.ng', role: 'clinician' },
    ],
    teams: [['dr.ng', 'sam']],
  });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test('a care plan edited in the browser shapes the next reply, and its provenance says so', async () => {
  const samApi = await apiLogin(server.base, 'sam');
  const conversation = await samApi.startChatting();
  const goal = 'Take a ten minute walk after lunch on weekdays';

  // The clinician edits the plan from the caseload.
  const clin = await signedIn(browser, server.base, 'dr.ng');
  await Promise.all([clin.page.waitForURL(/\/clinician\/patients\//), clin.page.click('#caseload a:text-is("sam")')]);
  await clin.page.selectOption('#item-kind', 'goal');
  await clin.page.fill('#item-text', goal);
  await Promise.all([clin.page.waitForEvent('load'), clin.page.click('#add-item')]);
  await clin.page.locator('#care-plan-items li', { hasText: goal }).waitFor();

  await clin.page.fill('#pref-tone', 'gentle and brief');
  await clin.page.fill('#pref-topics', 'alcohol, dieting');
  await clin.page.click('#save-preferences');
  await clin.page.locator('#ai-preferences-form [data-status]', { hasText: 'Saved.' }).waitFor();

  await clin.page.selectOption('#schedule-instrument', 'PHQ-9');
  await clin.page.fill('#schedule-every', '14');
  await clin.page.click('#schedule-save');
  await clin.page.locator('#schedule-form [data-status]', { hasText: 'Schedule saved.' }).waitFor();

  // What the editor saved, as the API reports it.
  const clinApi = await apiLogin(server.base, 'dr.ng');
  const detail = await clinApi.get(`/api/v1/patients/${samApi.id}`);
  const item = detail.care_plan.items.find((i) => i.text === goal);
  assert.ok(item, 'the goal is in the care plan');
  assert.equal(item.kind, 'goal');
  assert.equal(detail.care_plan.ai_preferences.tone, 'gentle and brief');
  assert.deepEqual(detail.care_plan.ai_preferences.topics_to_avoid, ['alcohol', 'dieting']);

  // The patient sees the goal, then chats in the browser.
  const pat = await signedIn(browser, server.base, 'sam');
  await pat.page.goto('/care-plan');
  await pat.page.locator('#care-plan-items li', { hasText: goal }).waitFor();
  await pat.page.goto('/chat');
  await pat.page.fill('#chat-input', 'I skipped my walk again today and I feel stuck.');
  await pat.page.click('#chat-send');
  await pat.page.waitForFunction(() => {
    const last = [...document.querySelectorAll('#messages .msg-assistant')].pop();
    return last && !last.hasAttribute('aria-busy');
  }, null, { timeout: 120_000 });
  const reply = (await pat.page.locator('#messages .msg-assistant .text').last().textContent()).trim();
  assert.ok(reply.length > 0);
  // The schedule reached the companion: it invites the due questionnaire.
  assert.match(reply, /PHQ-9/, 'the reply invites the scheduled questionnaire');

  // The API: the reply's provenance names the new item and the preferences.
  const msgs = (await clinApi.get(`/api/v1/patients/${samApi.id}/conversations/${conversation}/messages`)).messages;
  const stored = msgs.filter((m) => m.role === 'assistant').pop();
  assert.equal(stored.text.trim(), reply);
  assert.equal(stored.provenance.generator, 'model');
  assert.ok(stored.provenance.care_plan, `provenance records the care plan: ${JSON.stringify(stored.provenance)}`);
  assert.ok(stored.provenance.care_plan.items.includes(item.id), 'provenance names the new goal');
  assert.equal(stored.provenance.care_plan.ai_preferences, true);
  assert.equal(stored.provenance.measure_invitation, 'PHQ-9');

  // The clinician's conversation view shows the same, compactly.
  await clin.page.goto(`/clinician/patients/${samApi.id}`);
  await Promise.all([clin.page.waitForURL(/\/conversations\//), clin.page.click('#conversations a')]);
  const prov = clin.page.locator(`#provenance-${stored.id}`);
  await prov.locator('summary').click();
  assert.equal((await prov.locator('.prov-generator').textContent()).trim(), 'model');
  assert.equal((await prov.locator('.prov-model').textContent()).trim(), `${stored.provenance.model} (${stored.provenance.backend})`);
  assert.equal((await prov.locator('.prov-template').textContent()).trim(), stored.provenance.template);
  const used = prov.locator(`.prov-care-plan li[data-item="${item.id}"]`);
  assert.ok(await used.isVisible(), 'the goal is listed among the items used');
  assert.equal((await used.textContent()).trim(), `goal: ${goal}`);
  assert.equal((await prov.locator('.prov-preferences').textContent()).trim(), 'yes');
  await clin.ctx.close();
  await pat.ctx.close();
});
