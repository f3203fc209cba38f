/**
 * The figures every fault scenario prints: one `FAULT name: ...` line in a common format, also
 * appended (JSON) to the run's figures file, which the suite's global teardown (summary.ts) turns
 * into one table at the end.
 */
import { appendFileSync } from "node:fs";
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** JSON lines of Figures, one per scenario that ran (summary.ts). */
    faultFigures: string;
  }
}

export interface Figures {
  readonly scenario: string;
  /** Get and List p99 during the fault, ms, from a dockerd-shaped client on the socket. */
  readonly getP99: number;
  readonly listP99: number;
  /** Whether other volumes kept working meanwhile, and what was done with them. */
  readonly others: string;
  /** What Status (Get) said of the faulty volume during the fault. */
  readonly status: string;
  /** From the fault's end to working again, ms (undefined: nothing to recover from). */
  readonly recoveredMs: number | undefined;
  /** What was lost: empty when state, listed volumes, helpers and work files all checked out. */
  readonly lost: readonly string[];
  /** The scenario's own figures (rates, counts, timings). */
  readonly notes: string;
}

const ms = (n: number) => (Number.isFinite(n) ? `${n < 10 ? n.toFixed(1) : Math.round(n)} ms` : "n/a");
const duration = (n: number) => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`);
const recovery = (f: Figures) =>
  f.recoveredMs === undefined ? "nothing to recover" : `recovered in ${duration(f.recoveredMs)}`;
const lost = (f: Figures) => (f.lost.length === 0 ? "none" : f.lost.join(", "));

export function figuresLine(f: Figures): string {
  return (
    `FAULT ${f.scenario}: Get p99 ${ms(f.getP99)}, List p99 ${ms(f.listP99)} during; ` +
    `other volume ${f.others}; Status ${JSON.stringify(f.status)}; ${recovery(f)}; lost: ${lost(f)}` +
    (f.notes === "" ? "" : `; ${f.notes}`)
  );
}

/** Print the scenario's line and keep it for the summary table. */
export function report(f: Figures): void {
  console.log(figuresLine(f));
  appendFileSync(inject("faultFigures"), `${JSON.stringify(f)}\n`);
}

const cut = (text: string, width: number) => (text.length <= width ? text : `${text.slice(0, width - 1)}~`);

/** The summary: one row a scenario, in the order they ran. */
export function figuresTable(rows: readonly Figures[]): string {
  const head = [
    "scenario",
    "Get p99",
    "List p99",
    "other volumes",
    "Status during the fault",
    "recovery",
    "lost",
  ];
  const cells = rows.map((f) => [
    f.scenario,
    ms(f.getP99),
    ms(f.listP99),
    cut(f.others, 34),
    cut(f.status, 60),
    f.recoveredMs === undefined ? "-" : duration(f.recoveredMs),
    cut(lost(f), 30),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: readonly string[]) => `| ${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  const rule = `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`;
  return [line(head), rule, ...cells.map(line)].join("\n");
}
