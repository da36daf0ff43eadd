// A thin client of Tandem's JSON API (bearer token), for setting up what a browser test
// needs but does not test itself, and for checking what the pages showed.

import assert from 'node:assert/strict';
import { PASSWORD } from './tandem.mjs';

export async function apiLogin(base, username, password = PASSWORD) {
  const r = await fetch(`${base}/login`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(r.status, 200, `API sign-in as ${username}`);
  const body = await r.json();
  return new Api(base, body.token, body.user_id);
}

export class Api {
  constructor(base, token, userId) {
    this.base = base;
    this.token = token;
    this.id = userId;
  }

  async call(method, path, body, expect) {
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (expect !== undefined) {
      assert.equal(r.status, expect, `${method} ${path}: ${text.slice(0, 300)}`);
    }
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { json = null; }
    return { status: r.status, json, text };
  }

  async get(path) { return (await this.call('GET', path, undefined, 200)).json; }

  /** Sends a chat message and reads the streamed answer to its end: the `done` event. */
  async say(conversation, text) {
    const r = await fetch(`${this.base}/api/v1/conversations/${conversation}/messages`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ text }),
    });
    assert.equal(r.status, 200);
    const raw = await r.text();
    for (const block of raw.replace(/\r/g, '').split('\n\n')) {
      if (block.includes('event: done')) {
        const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('\n');
        return JSON.parse(data);
      }
    }
    throw new Error(`no done event in the reply stream: ${raw.slice(0, 500)}`);
  }

  /** Consent to AI processing and a new conversation: what the chat page asks a new patient. */
  async startChatting() {
    await this.call('POST', '/api/v1/me/consent', { ai_processing: true }, 204);
    return (await this.call('POST', '/api/v1/conversations', undefined, 201)).json.id;
  }
}
