import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const RESULTS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "results");

export type Row = Record<string, string | number>;

/** Prints rows as an aligned table. */
export function printTable(title: string, rows: readonly Row[]): void {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))];
  const cell = (value: unknown) => (typeof value === "number" ? formatNumber(value) : String(value ?? ""));
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => cell(row[column]).length)));
  const line = (values: string[]) => values.map((value, i) => value.padStart(widths[i] ?? 0)).join("  ");
  process.stdout.write(`\n${title}\n${line(columns)}\n${line(widths.map((w) => "-".repeat(w)))}\n`);
  for (const row of rows) process.stdout.write(`${line(columns.map((column) => cell(row[column])))}\n`);
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(value < 10 ? 2 : 1);
}

const resultsFile = (name: string) => join(RESULTS_DIR, `${name}.json`);

/** What the last run of `name` wrote, parsed (undefined when there is none or it is not JSON), to compare with. */
export async function readLastResults(name: string): Promise<unknown> {
  const text = await readFile(resultsFile(name), "utf8").catch(() => undefined);
  try {
    return text === undefined ? undefined : JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Writes the results with the machine they were measured on, to compare runs. */
export async function writeResults(name: string, results: unknown): Promise<string> {
  const file = resultsFile(name);
  await mkdir(dirname(file), { recursive: true });
  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
  };
  await writeFile(file, `${JSON.stringify({ measuredAt: new Date().toISOString(), machine, results }, null, 2)}\n`);
  return file;
}
