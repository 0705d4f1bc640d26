import { describe, expect, it } from "vitest";
import { ChangeEvent, changeEventsFromCloudEvents, changeEventsFromLegacy, changeKey } from "./change-event.js";
import { CloudEventNotification } from "./cloud-event-notification.js";
import { LegacyNotification } from "./legacy-notification.js";
import { partitionOf } from "./partition.js";

describe("change-event", () => {
  it("change-event - CloudEvents keep their id as the dedupe key and the merged-away id (QBO.md §1b)", () => {
    const events = changeEventsFromCloudEvents(
      CloudEventNotification.parse([
        {
          specversion: "1.0",
          id: "evt-1",
          source: "intuit.x",
          type: "qbo.customer.merged.v1",
          time: "2025-09-10T21:31:25.179851517Z",
          intuitentityid: "123",
          intuitaccountid: "310687",
          data: { deletedid: "27" },
        },
      ]),
    );
    expect(events).toEqual([
      {
        realmId: "310687",
        entity: "Customer",
        id: "123",
        operation: "Merge",
        occurredAt: "2025-09-10T21:31:25.179Z",
        deletedId: "27",
        source: "webhook",
        eventId: "evt-1",
      },
    ]);
    expect(ChangeEvent.parse(events[0])).toEqual(events[0]);
  });

  it("change-event - legacy entries read both lastUpdated formats and deletedID (QBO.md §1a)", () => {
    const events = changeEventsFromLegacy(
      LegacyNotification.parse({
        eventNotifications: [
          {
            realmId: "1185883450",
            dataChangeEvent: {
              entities: [
                { name: "Customer", id: "1", operation: "Create", lastUpdated: "2015-10-05T14:42:19-0700" },
                {
                  name: "Customer",
                  id: "27",
                  operation: "MERGE",
                  lastUpdated: "2015-10-05T21:50:00.000Z",
                  deletedID: "31",
                },
              ],
            },
          },
        ],
      }),
    );
    expect(events.map((e) => [e.occurredAt, e.operation, e.deletedId])).toEqual([
      ["2015-10-05T21:42:19.000Z", "Create", undefined],
      ["2015-10-05T21:50:00.000Z", "Merge", "31"],
    ]);
    // Derived ids are stable: a redelivered legacy notification yields the same event ids.
    expect(events[0]?.eventId).toMatch(/^[0-9a-f]{32}$/);
    expect(changeKey(events[1] as ChangeEvent)).toBe(
      `1185883450.Customer.27.Merge.${Date.parse("2015-10-05T21:50:00Z")}.${events[1]?.eventId}`,
    );
  });

  it("partition - is stable and spreads realms over every partition", () => {
    expect(partitionOf("9130357766543216", 64)).toBe(partitionOf("9130357766543216", 64));
    const seen = new Set(Array.from({ length: 2000 }, (_, i) => partitionOf(String(4620816365000000 + i), 64)));
    expect(seen.size).toBe(64);
  });
});
