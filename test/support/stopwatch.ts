/** Milliseconds per step of a multi-step operation (lab start-up, teardown), for the test to print. */
export function stopwatch() {
  const start = performance.now();
  let last = start;
  const timings: Record<string, number> = {};
  return {
    timings,
    lap(step: string) {
      const now = performance.now();
      timings[step] = Math.round(now - last);
      last = now;
    },
    total() {
      timings.total = Math.round(performance.now() - start);
    },
  };
}
