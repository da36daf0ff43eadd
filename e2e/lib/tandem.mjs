// Starts the real product for the browser tests: the `tandem` binary built by cargo, a
// fresh data directory (`tandem init`), accounts and care teams made with the CLI, then
// `tandem serve` on 127.0.0.1 with the real default model. Readiness is awaited by polling
// /readyz until the database answers and the model has loaded, never by sleeping a fixed
// time. The server is stopped when the test file ends, and killed if the process exits.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, readFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PASSWORD = 'a long test password 42';

const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts });
  if (r.error) { throw r.error; }
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}\n${r.stderr || ''}${r.stdout || ''}`);
  }
  return r.stdout;
}

let binary = null;

/** Builds `tandem` (a no-op when it is up to date) and returns the path of the binary. */
export function tandemBinary() {
  if (binary) { return binary; }
  if (process.env.TANDEM_BIN) {
    binary = process.env.TANDEM_BIN;
    return binary;
  }
  const out = run('cargo', ['build', '--locked', '-p', 'tandem-cli', '--bin', 'tandem',
    '--message-format=json-render-diagnostics'], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  for (const line of out.split('\n')) {
    if (!line.startsWith('{')) { continue; }
    const msg = JSON.parse(line);
    if (msg.reason === 'compiler-artifact' && msg.target && msg.target.name === 'tandem' && msg.executable) {
      binary = msg.executable;
    }
  }
  if (!binary) { throw new Error('cargo build did not report the tandem executable'); }
  return binary;
}

/** The GGUF file of the default model: $TANDEM_MODEL_PATH, else fetched once by `tandem model pull`. */
export function modelPath() {
  if (process.env.TANDEM_MODEL_PATH) { return process.env.TANDEM_MODEL_PATH; }
  const dir = path.join(REPO, 'target', 'models');
  const out = run(tandemBinary(), ['model', 'pull', '--dir', dir], { cwd: REPO });
  process.env.TANDEM_MODEL_PATH = out.trim().split('\n').pop();
  return process.env.TANDEM_MODEL_PATH;
}

/** The environment for every `tandem` command: no TANDEM_* setting of the caller leaks in. */
function tandemEnv(dataDir) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('TANDEM_')) { env[k] = v; }
  }
  env.TANDEM_DATA_DIR = dataDir;
  env.TANDEM_MODEL__EMBEDDED__MODEL_PATH = modelPath();
  env.TANDEM_LOG = 'info';
  return env;
}

/**
 * What the conversation engine answers to `text` as the first message of a throwaway
 * patient (`tandem converse`), without the web layer: the fixed crisis response to compare
 * the page against.
 */
export function converse(text) {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tandem-converse-'));
  try {
    const out = run(tandemBinary(), ['converse', '--model', modelPath()], {
      env: tandemEnv(dataDir), cwd: dataDir, input: `${JSON.stringify({ user: text })}\n`,
    });
    return JSON.parse(out.trim().split('\n').pop());
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * A running Tandem with the given accounts. `users` is a list of {name, role}; `teams` a
 * list of [clinician, patient] names. Every account has the password PASSWORD.
 */
export async function startTandem({ users = [], teams = [] } = {}) {
  const bin = tandemBinary();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tandem-e2e-'));
  const env = tandemEnv(dataDir);
  const cli = (args, input) => run(bin, args, { env, input, cwd: dataDir });
  cli(['init']);
  for (const u of users) {
    cli(['user', 'add', '--role', u.role, '--name', u.name, '--password-stdin'], `${PASSWORD}\n`);
  }
  for (const [clinician, patient] of teams) {
    cli(['team', 'assign', '--clinician', clinician, '--patient', patient]);
  }

  const logFile = path.join(dataDir, 'server.log');
  const logFd = openSync(logFile, 'w');
  // Port 0: the kernel picks a free port, and the server prints the address it got.
  const child = spawn(bin, ['serve', '--bind', '127.0.0.1:0'], {
    env, cwd: dataDir, stdio: ['ignore', 'pipe', logFd],
  });
  closeSync(logFd);
  live.add(child);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; live.delete(child); resolve(exited); });
  });
  const logTail = () => {
    try { return readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n'); } catch { return ''; }
  };

  const base = await new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk) => {
      out += chunk.toString();
      const m = out.match(/listening on (http:\/\/[0-9.:]+)/);
      if (m) { child.stdout.off('data', onData); resolve(m[1]); }
    };
    child.stdout.on('data', onData);
    exitPromise.then((e) => reject(new Error(`tandem serve exited early (${JSON.stringify(e)}):\n${logTail()}`)));
  });
  child.stdout.resume();

  const server = {
    base,
    dataDir,
    logTail,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => { if (!exited) { child.kill('SIGKILL'); } }, 10_000);
        await exitPromise;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await waitReady(base, () => exited, logTail);
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

/** Polls /readyz until the database answers and the model is loaded (or fails loudly). */
async function waitReady(base, exited, logTail) {
  const deadline = Date.now() + 180_000;
  let last = '';
  while (Date.now() < deadline) {
    if (exited()) { throw new Error(`tandem serve exited while starting:\n${logTail()}`); }
    try {
      const r = await fetch(`${base}/readyz`);
      const body = await r.json();
      last = JSON.stringify(body);
      if (r.status === 200 && body.model === 'ready') { return; }
      if (body.model === 'failed') { throw new Error(`the model did not load:\n${logTail()}`); }
    } catch (e) {
      if (String(e.message).startsWith('the model did not load')) { throw e; }
      last = String(e);
    }
    // Poll again shortly (a poll interval, not a synchronisation sleep).
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Tandem was not ready within 180 s (last /readyz: ${last}):\n${logTail()}`);
}
