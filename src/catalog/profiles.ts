/**
 * Credentials profiles that the catalog's definitions name and this node lacks. A definition made on
 * another node names its profile (never the secrets); each node must hold a profile of that name.
 * Checked off the request path (whenever the copy changes, and every few seconds: an operator may
 * add or remove one at any time), so Status says so without doing I/O per request.
 */

import { openProfile } from "../credentials.ts";
import { isValidName } from "../names.ts";
import type { VolumeRecord } from "../state/records.ts";

const RECHECK_MS = 5000;

export class ProfileCheck {
  private missing: ReadonlySet<string> = new Set();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;

  constructor(
    private readonly secretsDir: string,
    private readonly records: () => Iterable<VolumeRecord>,
  ) {}

  /** The profile `record` names, if this node lacks it. */
  lacking(record: VolumeRecord): string | undefined {
    const profile = record.options.credentials;
    return profile !== undefined && this.missing.has(profile) ? profile : undefined;
  }

  start(): void {
    this.refresh();
    this.timer = setInterval(() => this.refresh(), RECHECK_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Check again (one check at a time: a request made during one runs once it is done). */
  refresh(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.check().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.refresh();
      }
    });
  }

  private async check(): Promise<void> {
    const named = new Set<string>();
    for (const r of this.records()) {
      const profile = r.options.credentials;
      // Only what a Create would accept as a profile name: never a path out of the secrets dir.
      if (profile !== undefined && isValidName(profile)) named.add(profile);
    }
    const missing = new Set<string>();
    await Promise.all(
      [...named].map((name) => openProfile(this.secretsDir, name).catch(() => missing.add(name))),
    );
    this.missing = missing;
  }
}
