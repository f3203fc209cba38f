/** Names volgate turns into directories: a volume's (volumes/NAME) and a credentials profile's (secrets/NAME). */

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$/;

/** Volume and profile names: no path separators, no leading dot or dash. */
export function isValidName(name: string): boolean {
  return NAME_RE.test(name);
}
