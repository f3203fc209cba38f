/**
 * Error kinds, classified where they are raised. The front end turns every
 * error into `{"Err": message}` in one place (app.ts); messages must already
 * say what went wrong and what to do, and must never carry a secret.
 */
export type ErrorKind =
  | "invalid" // bad input from the user: fix the command
  | "not_found" // unknown volume
  | "conflict" // same name, different options
  | "busy" // refused while in use
  | "backend" // the remote side or a helper failed
  | "timeout" // a deadline passed
  | "internal"; // a bug or a local failure

export class VolgateError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = "VolgateError";
  }
}

export const invalid = (message: string) => new VolgateError("invalid", message);
export const notFound = (message: string) => new VolgateError("not_found", message);
export const conflict = (message: string) => new VolgateError("conflict", message);
export const busy = (message: string) => new VolgateError("busy", message);
export const backendError = (message: string, cause?: unknown) =>
  new VolgateError("backend", message, { cause });
export const timeout = (message: string) => new VolgateError("timeout", message);

/** Minimum length of a secret worth scrubbing: shorter ones would mangle ordinary text. */
const MIN_SECRET = 4;

/** Replace every occurrence of each secret in `text` by `***`. */
export function redact(text: string, secrets: Iterable<string>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length < MIN_SECRET) continue;
    out = out.split(secret).join("***");
  }
  return out;
}

/** How much of a user's value a message quotes: option values can be long, and nobody reads more. */
const SHOWN_MAX = 100;
/** The longest value whose userinfo is masked (under a millisecond); longer ones are cut before it could start. */
const SCAN_MAX = 1000;
const CONTROL = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/**
 * A value from the user as an error or a log line may quote it: URL userinfo (`//user:password@`,
 * and `user:password@` without a scheme) masked, control and format characters (newlines, escapes,
 * bidi overrides) shown as `?`, and no more than SHOWN_MAX characters. Every parse error that
 * echoes what it refused goes through here: such values may hold a secret given in the wrong place.
 */
export function shown(value: string): string {
  // The masks below backtrack: quadratic in the length (a 200,000-letter value took 19 s, and the
  // daemon answered nobody meanwhile). A longer value is only cut, before anything userinfo could start.
  if (value.length > SCAN_MAX) {
    const head = value.slice(0, SHOWN_MAX).split(/[:@]/)[0] ?? "";
    return `${head.replace(CONTROL, "?")}... (${value.length} characters)`;
  }
  const masked = value
    // Up to the last @ (a password may hold a / or an @): rather too much masked than too little.
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^?#\s]*@/gi, "$1***@")
    .replace(/(^|[\s,;=])[^\s,;=/@:]*:(?!\/\/)[^\s,;]*@/g, "$1***@")
    .replace(CONTROL, "?");
  if (masked.length <= SHOWN_MAX) return masked;
  return `${masked.slice(0, SHOWN_MAX)}... (${value.length} characters)`;
}

/** What the error codes of a local disk that cannot take a write mean. */
const DISK_WHY: Readonly<Record<string, string>> = {
  ENOSPC: "the disk is full",
  EDQUOT: "the disk quota is exhausted",
  EROFS: "the file system is read-only",
  EACCES: "permission denied",
  EPERM: "permission denied",
  EIO: "an I/O error",
};

/** `ENOSPC: the disk is full`, or the error's own message for a code not listed. */
export function diskReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const why = (code && DISK_WHY[code]) ?? messageOf(err);
  return `${code ? `${code}: ` : ""}${why}`;
}

/**
 * A file a mount needs in the work dir (a helper's log, a known_hosts or passwd file, a check
 * directory) could not be written: the same disk trouble the state has, said the same way.
 */
export function workFileError(workDir: string, err: unknown): VolgateError {
  return new VolgateError(
    "internal",
    `cannot write volgate's work files in ${workDir} (${diskReason(err)}): free space or make the directory writable, then try again`,
    { cause: err },
  );
}

/** A user-facing message for any thrown value; unknown errors keep only their message. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
