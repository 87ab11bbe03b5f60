// pino logger. Anything that looks like PEM private key material is scrubbed
// from every string on its way out: defence in depth behind the rule that
// keys are never passed to the logger at all.
import { pino, type Logger } from 'pino';

const PRIVATE_KEY_PEM = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z ]*PRIVATE KEY-----|$)/g;

export function scrub(s: string): string {
  return s.replace(PRIVATE_KEY_PEM, '[REDACTED PRIVATE KEY]');
}

export function createLogger(level: string, format: 'json' | 'pretty', destination?: NodeJS.WritableStream): Logger {
  const opts: pino.LoggerOptions = {
    level,
    base: { component: 'agent-identity-operator' },
    redact: { paths: ['*.data', '*.privateKey', '*.key', 'data', 'privateKey'], censor: '[REDACTED]' },
    hooks: {
      streamWrite: scrub,
    },
  };
  if (format === 'pretty') {
    const colorize = prettyColorize(process.stdout.isTTY === true, process.env);
    return pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize } } });
  }
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}

/** Colour only for a person at a terminal: redirected to a file or pipe, escape codes are noise (https://no-color.org). */
export function prettyColorize(stdoutIsTTY: boolean, env: Record<string, string | undefined>): boolean {
  return stdoutIsTTY && !env.NO_COLOR;
}
