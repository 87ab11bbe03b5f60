// PEM armour lines for assertions about generated keys. They are built from
// parts so that no test file carries a literal private-key armour line, which
// secret scanners (in this repo's CI or a user's) would flag as a committed key.
// No test commits key material: every key is generated at run time.
const DASHES = '-'.repeat(5);

export function begin(label: string): string {
  return `${DASHES}BEGIN ${label}${DASHES}`;
}

export function end(label: string): string {
  return `${DASHES}END ${label}${DASHES}`;
}

/** Matches text that starts with the armour of `label`, e.g. startsWithPem('PRIVATE KEY'). */
export function startsWithPem(label: string): RegExp {
  return new RegExp(`^${begin(label)}`);
}

/** Matches text containing the armour of `label` anywhere. */
export function containsPem(label: string): RegExp {
  return new RegExp(begin(label));
}

/** Exactly one PEM block of `label`, base64 body, trailing newline. */
export function wholePem(label: string): RegExp {
  return new RegExp(`^${begin(label)}\\n[A-Za-z0-9+/=\\n]+${end(label)}\\n$`);
}
