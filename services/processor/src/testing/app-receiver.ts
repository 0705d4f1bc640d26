import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DeliveredChange } from "@qbo-webhooks/contracts";
import { Webhook } from "standardwebhooks";

export const DELIVERY_SECRET = `whsec_${Buffer.from("an app's secret of 32 bytes!!!!!").toString("base64")}`;

/**
 * An app that takes deliveries as a careful app would: it verifies the Standard Webhooks signature
 * (401 otherwise), keeps one delivery per `webhook-id`, and applies each change to its own copy.
 * It also notes, for tests, every way a delivery could mislead an app: a version older than one
 * it already applied, or a realm sequence that skips.
 */
export async function startAppReceiver() {
  const webhook = new Webhook(DELIVERY_SECRET);
  const seen = new Set<string>();
  /** Deduplicated deliveries, in arrival order. */
  const accepted: DeliveredChange[] = [];
  /** Entity ("realm/Entity/id") → SyncToken, or absent once deleted: the app's copy. */
  const copy = new Map<string, string>();
  const lastVersion = new Map<string, number>();
  const lastSequence = new Map<string, number>();
  const problems: string[] = [];
  let posts = 0;
  let badSignatures = 0;
  const state = { answer: (_change: DeliveredChange): number => 200 };

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      posts++;
      const body = Buffer.concat(chunks).toString();
      let change: DeliveredChange;
      try {
        change = DeliveredChange.parse(webhook.verify(body, headersOf(req.headers)));
      } catch {
        badSignatures++;
        res.writeHead(401).end();
        return;
      }
      const status = state.answer(change);
      if (status === 200) take(String(req.headers["webhook-id"]), change);
      res.writeHead(status).end();
    });
  });

  function take(webhookId: string, change: DeliveredChange) {
    if (seen.has(webhookId)) return;
    seen.add(webhookId);
    accepted.push(change);
    const key = `${change.realmId}/${change.entity}/${change.id}`;
    const previousSeq = lastSequence.get(change.realmId) ?? 0;
    if (change.realmSequence <= previousSeq)
      problems.push(`${change.realmId}: sequence ${change.realmSequence} after ${previousSeq}`);
    else if (change.realmSequence !== previousSeq + 1)
      problems.push(`${change.realmId}: sequence jumped from ${previousSeq} to ${change.realmSequence}`);
    lastSequence.set(change.realmId, Math.max(previousSeq, change.realmSequence));
    if (change.version) {
      const version = Number(change.version.syncToken);
      if (version < (lastVersion.get(key) ?? -1))
        problems.push(`${key}: version ${version} after ${lastVersion.get(key)}`);
      lastVersion.set(key, version);
      copy.set(key, change.version.syncToken);
    } else {
      copy.delete(key);
    }
  }

  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/qbo-changes`,
    accepted,
    /** Whether a delivery with this `webhook-id` was taken. */
    took: (webhookId: string) => seen.has(webhookId),
    problems,
    get posts() {
      return posts;
    },
    get badSignatures() {
      return badSignatures;
    },
    /** Sets the status the app answers with from now on (200 means taken). */
    answer(answer: (change: DeliveredChange) => number) {
      state.answer = answer;
    },
    /** The app's copy in the pipeline harness's shape: realm → "Entity/id" → SyncToken. */
    copy(): Record<string, Record<string, string>> {
      const result: Record<string, Record<string, string>> = {};
      for (const [key, syncToken] of copy) {
        const [realmId = "", entity = "", id = ""] = key.split("/");
        result[realmId] = { ...result[realmId], [`${entity}/${id}`]: syncToken };
      }
      return result;
    },
    async close() {
      server.closeAllConnections();
      server.close();
    },
  };
}

export type AppReceiver = Awaited<ReturnType<typeof startAppReceiver>>;

function headersOf(headers: NodeJS.Dict<string | string[]>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(headers).flatMap(([name, value]) => (typeof value === "string" ? [[name, value]] : [])),
  );
}
