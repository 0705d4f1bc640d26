import { readFileSync } from "node:fs";
import { type JetStreamClient, type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import {
  type Authenticator,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  nkeyAuthenticator,
} from "@nats-io/transport-node";
import type { Logger } from "@qbo-webhooks/observability";
import "./coalesced-writes-fix.js";
import "./settled-request-fix.js";

export interface NatsClientOptions {
  /** One or more server URLs; credentials may ride in the URL (`nats://user:pass@host:4222`). */
  readonly servers: readonly string[];
  /** Shown in the server's connection list, e.g. `ingress`. */
  readonly name: string;
  readonly logger: Logger;
  /** Who this client is to the server, and how the connection is encrypted; none means anonymous, plain. */
  readonly auth?: NatsAuth;
}

/** The usual NATS ways to authenticate (at most one) and TLS; files are read at connect. */
export interface NatsAuth {
  /** A `.creds` file (JWT and NKey seed), as `nsc` writes it. */
  readonly credsFile?: string;
  /** A file holding an NKey user seed (`SU...`). */
  readonly nkeySeedFile?: string;
  readonly user?: string;
  readonly password?: string;
  readonly token?: string;
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
}

function connectionAuth(auth: NatsAuth | undefined): Partial<ConnectionOptions> {
  if (!auth) return {};
  const authenticators: Authenticator[] = [];
  if (auth.credsFile) authenticators.push(credsAuthenticator(readFileSync(auth.credsFile)));
  if (auth.nkeySeedFile) {
    authenticators.push(nkeyAuthenticator(new TextEncoder().encode(readFileSync(auth.nkeySeedFile, "utf8").trim())));
  }
  return {
    ...(authenticators.length > 0 ? { authenticator: authenticators } : {}),
    ...(auth.user !== undefined ? { user: auth.user, pass: auth.password ?? "" } : {}),
    ...(auth.token !== undefined ? { token: auth.token } : {}),
    ...(auth.tls ? { tls: { ...auth.tls } } : {}),
  };
}

type ReconnectListener = () => Promise<void>;

/**
 * One NATS connection with its JetStream handles. It keeps reconnecting for ever (JetStream work
 * must resume, not die, when a server restarts) and reports whether it is connected now.
 */
export class NatsClient {
  #connected = true;
  readonly #listeners: ReconnectListener[] = [];

  private constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly logger: Logger,
  ) {
    void this.#watchStatus();
  }

  /** Connects, retrying until a server answers. Rejects only on a permanent error such as bad credentials. */
  static async connect(options: NatsClientOptions): Promise<NatsClient> {
    const nc = await connect({
      servers: [...options.servers],
      name: options.name,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      // Notice a dead server within seconds rather than the default two minutes.
      pingInterval: 5_000,
      maxPingOut: 2,
      // Capturing a stack trace for every request costs ~8% of the ingress's CPU at load; our
      // errors are typed and logged where they happen, so the extra async frames are not needed.
      noAsyncTraces: true,
      ...connectionAuth(options.auth),
    });
    const jsm = await jetstreamManager(nc, { checkAPI: false });
    options.logger.info({ server: nc.getServer() }, "connected to NATS");
    return new NatsClient(nc, jetstream(nc), jsm, options.logger);
  }

  /** Whether the connection is up now; requests made while it is down wait for a reconnect or time out. */
  get connected(): boolean {
    return this.#connected && !this.nc.isClosed() && !this.nc.isDraining();
  }

  /** The largest message the server accepts, in bytes. */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? 0;
  }

  /** Runs after every reconnect, e.g. to declare streams again on a server that lost its store. */
  onReconnect(listener: ReconnectListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Lets pending requests and subscriptions finish, then closes. With the server unreachable there
   * is nothing left to flush to it, so the connection is closed instead.
   */
  async drain(): Promise<void> {
    if (this.nc.isClosed()) return;
    try {
      await this.nc.drain();
    } catch (err) {
      this.logger.warn({ err }, "NATS drain failed; closing the connection");
      await this.nc.close();
    }
  }

  async #watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      switch (status.type) {
        case "disconnect":
          this.#connected = false;
          this.logger.warn({ server: status.server }, "disconnected from NATS");
          break;
        case "reconnect":
          this.logger.info({ server: status.server }, "reconnected to NATS");
          await this.#runReconnectListeners();
          this.#connected = true;
          break;
        case "error":
          this.logger.error({ err: status.error }, "NATS connection error");
          break;
        default:
          break;
      }
    }
  }

  async #runReconnectListeners(): Promise<void> {
    for (const listener of this.#listeners) {
      try {
        await listener();
      } catch (err) {
        // The listener's own retry or the next reconnect repairs this; readiness stays truthful via its caller.
        this.logger.error({ err }, "reconnect step failed");
      }
    }
  }
}
