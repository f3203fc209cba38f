/** The errors tests expect: a rejection with a VolgateError, or a synchronous refusal of bad input. */
import { expect } from "vitest";
import { VolgateError } from "../../src/errors.ts";

/** The VolgateError a promise rejects with; fails the test if it resolves or rejects with anything else. */
export async function failure(p: Promise<unknown>): Promise<VolgateError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VolgateError);
  return err as VolgateError;
}

/** The `invalid` VolgateError `run` throws; fails the test if it returns. */
export function refusal(run: () => unknown, what = "the input"): VolgateError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(VolgateError);
    expect((err as VolgateError).kind).toBe("invalid");
    return err as VolgateError;
  }
  throw new Error(`${what} was accepted`);
}
