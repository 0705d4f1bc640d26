// What /proc says of a process: its CPU time and resident memory (Linux only, like the benches).
import { readFile } from "node:fs/promises";
import type { Row } from "./bench-report.js";

/**
 * /proc/<pid>/stat from field 3 on (state, ppid, …): the command name (field 2) may hold spaces, so
 * the fields are split after its closing parenthesis.
 */
export function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** A process's resident memory in MB (0 once it is gone). */
export async function residentMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** Linux's clock ticks per second for /proc's CPU times (USER_HZ; 100 on every architecture Node runs on). */
const CLOCK_TICKS = 100;

/** CPU time a process has used so far, user plus system, in seconds (fields 14 and 15 of /proc/<pid>/stat). */
export async function cpuSeconds(pid: number): Promise<number> {
  const fields = statFields(await readFile(`/proc/${pid}/stat`, "utf8"));
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** What a process spent over a measured window, and the changes the pipeline made in it. */
export interface CpuSpent {
  readonly phase: string;
  readonly process: string;
  readonly changes: number;
  readonly seconds: number;
  readonly cpuMs: number;
  readonly rssMb: number | string;
}

/** One row of the CPU-per-change table: the process's CPU per 1,000 changes, and its share of a core. */
export function cpuRow({ phase, process, changes, seconds, cpuMs, rssMb }: CpuSpent): Row {
  return {
    phase,
    process,
    "changes/s": changes / seconds,
    "CPU ms / 1,000 changes": changes > 0 ? (cpuMs / changes) * 1000 : Number.NaN,
    "CPU % of a core": (cpuMs / (seconds * 1000)) * 100,
    "RSS MB": rssMb,
  };
}
