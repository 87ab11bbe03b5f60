// Driving a child process that reports JSON lines (test/support/sdk-peer.ts)
// or prints text (openssl, python): wait for what it says, send it input.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export type PeerEvent = { event: string } & Record<string, unknown>;

const PEER_SCRIPT = new URL('./sdk-peer.ts', import.meta.url).pathname;
const WAIT_MS = 15_000;

export class PeerProcess {
  readonly child: ChildProcess;
  readonly events: PeerEvent[] = [];
  #stderr = '';
  #consumed = new Set<PeerEvent>();
  #waiters: (() => void)[] = [];

  /** sdk-peer.ts with `args`; or, with `command`, that command with `args` (a python agent, the proxy). */
  constructor(args: string[], how: { command?: string; env?: NodeJS.ProcessEnv } = {}) {
    const [command, argv] = how.command === undefined ? [process.execPath, [PEER_SCRIPT, ...args]] : [how.command, args];
    this.child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: how.env ?? process.env });
    this.child.stderr!.on('data', (d) => (this.#stderr += d));
    // send() to a peer that already exited fails with EPIPE; waitFor then reports the exit and what it said.
    this.child.stdin!.on('error', () => undefined);
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      // sdk-peer.ts and the python agent name an event; the proxy's log lines a msg.
      const parsed = JSON.parse(line) as Record<string, unknown>;
      this.events.push({ ...parsed, event: String(parsed.event ?? parsed.msg) });
      for (const w of this.#waiters.splice(0)) w();
    });
    this.child.on('exit', () => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** The first event not yet returned by waitFor that matches; fails after 15 s or when the process exits. */
  async waitFor(event: string, match: (e: PeerEvent) => boolean = () => true): Promise<PeerEvent> {
    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      const found = this.events.find((e) => e.event === event && !this.#consumed.has(e) && match(e));
      if (found) {
        this.#consumed.add(found);
        return found;
      }
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no ${event} event; process said: ${JSON.stringify(this.events)} ${this.#stderr}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.kill();
    await exited;
  }
}

export const sdkServer = (dir: string) => new PeerProcess(['server', dir]);
export const sdkClient = (dir: string, port: number, expectedID: string) => new PeerProcess(['client', dir, String(port), expectedID]);

/** Runs a command to completion, or until its output includes `until` (then closes its stdin). */
export async function run(command: string, args: string[], opts: { input?: string; until?: string } = {}): Promise<{ code: number | null; output: string }> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const onData = (d: Buffer) => {
    output += d;
    if (opts.until !== undefined && output.includes(opts.until)) child.stdin.end();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  // A command that exits before reading its input closes the pipe (EPIPE); its code and output tell why.
  child.stdin.on('error', () => undefined);
  if (opts.input !== undefined) child.stdin.write(opts.input);
  if (opts.until === undefined) child.stdin.end();
  const timer = setTimeout(() => child.kill(), WAIT_MS);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearTimeout(timer);
  return { code, output };
}
