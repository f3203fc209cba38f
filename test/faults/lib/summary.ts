/**
 * Global setup of the faults project: a figures file every scenario appends to (figures.ts), and
 * at the end of the run one table of all scenarios, with each one's own figures below it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { type Figures, figuresTable } from "./figures.ts";

export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), "volgate-faults-"));
  const file = join(dir, "figures.jsonl");
  project.provide("faultFigures", file);
  const started = Date.now();
  return () => {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // no scenario ran
    }
    rmSync(dir, { recursive: true, force: true });
    const rows = text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as Figures);
    const seconds = Math.round((Date.now() - started) / 1000);
    console.log(`\nfault suite: ${rows.length} scenarios in ${seconds} s\n${figuresTable(rows)}`);
    for (const f of rows) if (f.notes !== "") console.log(`  ${f.scenario}: ${f.notes}`);
  };
}
