import { randomUUID } from "node:crypto";

export interface SampleCloudEventOptions {
  readonly realmId?: string;
  /** The CloudEvents type, e.g. `qbo.invoice.updated.v1`. */
  readonly type?: string;
  readonly entityId?: string;
  readonly time?: string;
}

/** One CloudEvent shaped like QuickBooks' sample (QBO.md §1b), with a fresh id. */
export function sampleCloudEvent(options: SampleCloudEventOptions = {}) {
  return {
    specversion: "1.0",
    id: randomUUID(),
    source: "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
    type: options.type ?? "qbo.customer.updated.v1",
    datacontenttype: "application/json",
    time: options.time ?? new Date().toISOString(),
    intuitentityid: options.entityId ?? "1",
    intuitaccountid: options.realmId ?? "310687",
    data: {},
  };
}

/** A CloudEvents notification body of `count` events for one realm. */
export function sampleCloudEventBody(count: number, options: Omit<SampleCloudEventOptions, "entityId"> = {}): string {
  return JSON.stringify(
    Array.from({ length: count }, (_, i) => sampleCloudEvent({ ...options, entityId: String(i + 1) })),
  );
}

/** A legacy `eventNotifications` body (QBO.md §1a) with one change per entity id. */
export function sampleLegacyBody(realmId = "1185883450", ids: readonly string[] = ["1"]): string {
  const lastUpdated = new Date().toISOString();
  return JSON.stringify({
    eventNotifications: [
      {
        realmId,
        dataChangeEvent: { entities: ids.map((id) => ({ name: "Customer", id, operation: "Update", lastUpdated })) },
      },
    ],
  });
}
