import { z } from "zod";

/**
 * Who leads the reconcilers, as stored in the lock (KV `qbo-leases`, key `reconciler.leader`, or a
 * Kubernetes Lease): read by the reconcilers and by `qbo-webhooks status`.
 */
export const LeaderRecord = z.object({
  /** The holder's identity; empty when released. */
  holder: z.string(),
  /** How long the record holds without renewal. */
  leaseMs: z.number().int().nonnegative(),
  /** Counts changes of holder: the fence of a leader's work. */
  transitions: z.number().int().nonnegative(),
});
export type LeaderRecord = z.infer<typeof LeaderRecord>;

/** The key of the reconcilers' lock in KV `qbo-leases`, outside Kubernetes. */
export const LEADER_KEY = "reconciler.leader";
