import { Agent, type AgentOptions } from "node:https";
import { isDeepStrictEqual } from "node:util";
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";

/** What an agent's TLS connections are made of: while it stays the same, so can the agent. */
const TLS_MATERIAL = ["ca", "cert", "key", "pfx", "passphrase", "rejectUnauthorized", "servername"] as const;
type TlsMaterial = Pick<AgentOptions, (typeof TLS_MATERIAL)[number]>;

/**
 * A KubeConfig whose API requests share one keep-alive agent. @kubernetes/client-node 1.4 gives
 * every request a new https.Agent (`applySecurityAuthentication`), so every request opened its own
 * TLS connection with a TLS context built anew from the CA and client certificate: the leader of
 * 1,000 companies writes up to 20 statuses a second. The shared agent is replaced when the TLS
 * material changes (an exec plugin's rotated certificate); proxy and plain-HTTP agents are left as
 * the client makes them. Credentials in headers (tokens) are still set per request by the client.
 */
export class PooledKubeConfig extends KubeConfig {
  #pooled: { material: TlsMaterial; agent: Agent } | undefined;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getAgent();
    if (!(made instanceof Agent) || made.constructor !== Agent) return;
    const material: TlsMaterial = Object.fromEntries(TLS_MATERIAL.map((name) => [name, made.options[name]]));
    if (!this.#pooled || !isDeepStrictEqual(this.#pooled.material, material)) {
      this.#pooled = { material, agent: new Agent({ ...made.options, keepAlive: true }) };
    }
    context.setAgent(this.#pooled.agent);
  }
}
