/** A process's resident memory, read from /proc, once or as the peak over a while. */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";

const parse = (status: string) => Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN) / 1024);

/** RSS of `pid` in MB (NaN when it is gone). */
export async function rssMb(pid: number | undefined): Promise<number> {
  return parse(await readFile(`/proc/${pid}/status`, "utf8").catch(() => ""));
}

/** Sample RSS every 100 ms until stop(), which returns the peak in MB. */
export function watchRss(pid: number | undefined): { stop(): number } {
  let peak = 0;
  const read = () => {
    let text = "";
    try {
      text = readFileSync(`/proc/${pid}/status`, "utf8");
    } catch {
      return;
    }
    peak = Math.max(peak, parse(text));
  };
  read();
  const timer = setInterval(read, 100);
  return {
    stop() {
      clearInterval(timer);
      read();
      return peak;
    },
  };
}
