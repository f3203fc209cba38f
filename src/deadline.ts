/**
 * A request's time as one object: the moment its budget runs out and Docker's abort (dockerd hung
 * up on the request), merged into one AbortSignal. Every step of a request (the runner, mount
 * supervision, a preflight) draws on the same budget, and every way of running out says the same.
 */
import { timeout, type VolgateError } from "./errors.ts";

/** `20s`, `1.5s`: the budget as the operator set it. */
const seconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

export class Deadline {
  private lazySignal: AbortSignal | undefined;

  private constructor(
    private readonly until: number,
    /** The whole budget, for messages: what the operator set, not what a step had left. */
    private readonly budgetMs: number,
    /** Docker's abort, when the request has one. */
    private readonly abort: AbortSignal | undefined,
  ) {}

  /** A budget of `ms` from now, cut short when `abort` (the request's signal) fires. */
  static after(ms: number, abort?: AbortSignal): Deadline {
    return new Deadline(Date.now() + ms, ms, abort);
  }

  /** Milliseconds left, never below 1 so timers still fire. */
  left(): number {
    return Math.max(1, this.until - Date.now());
  }

  /** The budget is spent, or Docker aborted. */
  get over(): boolean {
    return this.abort?.aborted === true || this.lazySignal?.aborted === true || Date.now() >= this.until;
  }

  /** Aborts when the budget is spent or Docker aborts: for the APIs that take a signal. */
  get signal(): AbortSignal {
    if (this.lazySignal === undefined) {
      const spent = AbortSignal.timeout(Math.max(0, this.until - Date.now()));
      this.lazySignal = this.abort ? AbortSignal.any([spent, this.abort]) : spent;
    }
    return this.lazySignal;
  }

  /** What to throw for `what` now that the deadline is over; `hint` says what to do after a timeout. */
  error(what: string, hint?: string): VolgateError {
    if (this.abort?.aborted) return timeout(`${what} was cancelled because Docker aborted the request`);
    return timeout(`${what} timed out after ${seconds(this.budgetMs)}${hint ? `: ${hint}` : ""}`);
  }

  /** Call `end` once when the deadline is over (soon, if it is already); returns what cancels that. */
  onEnd(end: () => void): () => void {
    const signal = this.signal;
    let armed = true;
    const fire = () => {
      if (!armed) return;
      armed = false;
      end();
    };
    if (signal.aborted) queueMicrotask(fire);
    else signal.addEventListener("abort", fire, { once: true });
    return () => {
      armed = false;
      signal.removeEventListener("abort", fire);
    };
  }

  /**
   * `work`'s value, or error(what, hint) once the deadline is over. The work itself goes on: a
   * stat on a hung mount cannot be cancelled, only no longer waited for.
   */
  race<T>(work: Promise<T>, what: string, hint?: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.onEnd(() => reject(this.error(what, hint)));
      work.then(
        (value) => {
          cancel();
          resolve(value);
        },
        (err: unknown) => {
          cancel();
          reject(err);
        },
      );
    });
  }

  /** The same budget, but at least `ms` from now: one last look after work that spent it. */
  atLeast(ms: number): Deadline {
    return new Deadline(Math.max(this.until, Date.now() + ms), this.budgetMs, this.abort);
  }
}
