import type { ChildProcess } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { z } from "zod";
import { statFields } from "./process-usage.js";

/** The line `npm start` prints once every service runs and every sandbox company is connected. */
export const RUNNING_BANNER = "qbo-webhooks is running locally";

/**
 * Resolves when a local pipeline (`npm start` or scripts/start-local.mjs) prints that it runs, with
 * what it printed on stdout until then; rejects if it exits first or takes longer than `limitMs`.
 */
export async function running(child: ChildProcess, limitMs: number): Promise<string> {
  let seen = "";
  const started = new Promise<string>((resolve, reject) => {
    child.stdout?.on("data", (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(RUNNING_BANNER)) resolve(seen);
    });
    child.once("exit", (code) =>
      reject(new Error(`the pipeline exited (${code}) before it ran:\n${seen.slice(-2000)}`)),
    );
  });
  // The limit's timer is cleared once started: a pending one would keep the bench's process alive.
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the pipeline did not start within ${limitMs / 1000} s`)), limitMs);
  });
  try {
    return await Promise.race([started, timedOut]);
  } finally {
    clearTimeout(timer);
    child.stdout?.resume();
  }
}

/** Notifications and events not yet processed (the work streams are work queues: what is there waits). */
export async function unprocessed(natsMonitorUrl: string): Promise<number> {
  const Jsz = z.object({
    account_details: z
      .array(
        z.object({ stream_detail: z.array(z.object({ name: z.string(), state: z.object({ messages: z.number() }) })) }),
      )
      .default([]),
  });
  const jsz = Jsz.parse(await fetch(`${natsMonitorUrl}/jsz?streams=true`).then((r) => r.json()));
  return jsz.account_details
    .flatMap((a) => a.stream_detail)
    .filter((s) => s.name === "QBO_WEBHOOKS" || s.name === "QBO_EVENTS")
    .reduce((sum, s) => sum + s.state.messages, 0);
}

/** The launcher's children (nats-server, sandbox, each service) by the program they run: pid. */
export async function services(parent: number): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    if (statFields(stat)[1] !== String(parent)) continue;
    const command = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0");
    found.set(serviceName(command, found), Number(entry));
  }
  return found;
}

function serviceName(command: string[], taken: Map<string, number>): string {
  const script = command.find((part) => /\/dist\/[\w-]+\.mjs$/.test(part)) ?? command[0] ?? "?";
  const base = /(?:services|packages)\/([\w-]+)\/dist/.exec(script)?.[1] ?? script.split("/").pop() ?? "?";
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}-${n}`;
  return name;
}
