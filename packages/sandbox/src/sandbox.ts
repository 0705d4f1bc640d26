import { once } from "node:events";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { ApiBehaviour, type ApiBehaviourInput, RateLimiter } from "./api/api-behaviour.js";
import { type MalformedAnswer, malformedAnswers } from "./api/malformed-answers.js";
import { oauthRouter, type TokenRecord } from "./api/oauth-router.js";
import { OAuthStore, type TokenSet } from "./api/oauth-store.js";
import { type ApiEndpoint, intuitTid, type QueryPage, qboApiRouter } from "./api/qbo-api-router.js";
import { SandboxClock } from "./clock.js";
import { type ChangeRecord, Company } from "./company/company.js";
import { type Random, seededRandom } from "./company/entity-fields.js";
import { controlRouter } from "./control/control-router.js";
import { FaultDraws } from "./fault-draws.js";
import { SandboxError } from "./sandbox-error.js";
import type { SandboxState } from "./sandbox-state.js";
import { type WebhookAppInput, WebhookAppSettings } from "./webhooks/webhook-app.js";
import type { WebhookFault } from "./webhooks/webhook-faults.js";
import { type DeliveryState, WebhookSender } from "./webhooks/webhook-sender.js";

export interface SandboxOptions {
  /** Sandbox time runs this many times faster than real time; 0 stops it (tests then `advance`). */
  readonly speed?: number;
  /** Sandbox time at start, ms since the epoch; now by default. */
  readonly start?: number;
  /** Seed for everything random (fields, fault percentages), so runs repeat. */
  readonly seed?: number;
  /** Port to listen on; 0 (the default) picks a free one. */
  readonly port?: number;
  readonly host?: string;
}

interface App {
  readonly settings: WebhookAppSettings;
  readonly sender: WebhookSender;
  /** Connected companies and when they connected: only later changes produce webhooks (QBO.md §3). */
  readonly connections: Map<string, number>;
}

export interface ApiStats {
  /** Requests that reached the API, per realm and endpoint. */
  readonly requests: Record<string, Partial<Record<ApiEndpoint, number>>>;
  /** Requests answered as throttled, per realm. */
  readonly throttled: Record<string, number>;
  readonly serverErrors: Record<string, number>;
  readonly tokenRequests: number;
  /** Answers spoiled by an injected {@link MalformedAnswer}. */
  readonly malformedAnswers: number;
}

/**
 * A stand-in for QuickBooks Online: companies and their data, apps with webhooks delivered by
 * QuickBooks' rules, the REST and OAuth APIs, and a control API, all on one HTTP port.
 */
export class Sandbox {
  readonly clock: SandboxClock;
  readonly oauth: OAuthStore;
  readonly #random: Random;
  readonly #companies = new Map<string, Company>();
  readonly #apps = new Map<string, App>();
  readonly #limiter = new RateLimiter();
  readonly #pageListeners = new Set<(page: QueryPage) => void>();
  readonly #stateListeners = new Set<() => void>();
  #behaviour: ApiBehaviour = ApiBehaviour.parse({});
  #serverErrors = new FaultDraws(this.#behaviour.serverErrors, () => 0);
  #malformed = new FaultDraws(this.#behaviour.malformedAnswers, () => 0);
  #tokenFaults = new FaultDraws(this.#behaviour.tokenFaults, () => 0);
  readonly #tokenLog: TokenRecord[] = [];
  #stats: {
    requests: ApiStats["requests"];
    throttled: Record<string, number>;
    serverErrors: Record<string, number>;
    tokenRequests: number;
    malformedAnswers: number;
  } = {
    requests: {},
    throttled: {},
    serverErrors: {},
    tokenRequests: 0,
    malformedAnswers: 0,
  };
  // Realm ids look like QuickBooks' 16-digit ones, beyond Number precision, hence BigInt.
  #nextRealm = 9_130_357_766_500_000n;
  #server: Server | undefined;
  #url = "";

  private constructor(options: SandboxOptions) {
    this.clock = new SandboxClock({ speed: options.speed ?? 1, ...(options.start ? { start: options.start } : {}) });
    this.oauth = new OAuthStore(this.clock, () => this.#stateChanged());
    this.#random = seededRandom(options.seed ?? 1);
  }

  /** Starts a sandbox listening on loopback (a free port unless `port` is given). */
  static async start(options: SandboxOptions = {}): Promise<Sandbox> {
    const sandbox = new Sandbox(options);
    const server = sandbox.#httpApp().listen(options.port ?? 0, options.host ?? "127.0.0.1");
    await once(server, "listening");
    sandbox.#server = server;
    sandbox.#url = `http://${options.host ?? "127.0.0.1"}:${(server.address() as AddressInfo).port}`;
    return sandbox;
  }

  /** Base URL of the REST API, OAuth endpoints and control API: what `QBO_API_BASE_URL` points at. */
  get url(): string {
    return this.#url;
  }

  async close(): Promise<void> {
    this.clock.stop();
    await Promise.all([...this.#apps.values()].map((app) => app.sender.settled()));
    if (this.#server) {
      const closed = once(this.#server, "close");
      this.#server.close();
      this.#server.closeAllConnections();
      await closed;
    }
  }

  createCompany(options: { realmId?: string; name?: string } = {}): Company {
    const realmId = options.realmId ?? String(this.#nextRealm++);
    if (this.#companies.has(realmId)) throw new SandboxError("INVALID_REQUEST", `company ${realmId} exists already`);
    const company = new Company(realmId, options.name ?? `Sandbox Company ${realmId}`, this.clock, this.#random, (c) =>
      this.#dispatch(c),
    );
    this.#companies.set(realmId, company);
    this.#stateChanged();
    return company;
  }

  /**
   * What a restart needs to go on as if it never happened (see {@link SandboxState}); {@link
   * onStateChange} says when it has changed.
   */
  state(): SandboxState {
    return {
      version: 1,
      savedAt: this.clock.now(),
      nextRealm: String(this.#nextRealm),
      companies: this.companies().map((company) => company.toState()),
      oauth: this.oauth.toState(),
      connections: Object.fromEntries(
        [...this.#apps].map(([appId, app]) => [appId, Object.fromEntries(app.connections)]),
      ),
    };
  }

  /** Takes back a saved state: into a sandbox with no company yet, whose apps are registered already. */
  restore(state: SandboxState): void {
    if (this.#companies.size > 0) throw new SandboxError("INVALID_REQUEST", "restore needs a sandbox with no company");
    const apps = Object.entries(state.connections).map(([appId, connections]) => ({
      app: this.#app(appId),
      connections,
    }));
    for (const saved of state.companies) {
      const company = Company.fromState(saved, this.clock, this.#random, (c) => this.#dispatch(c));
      this.#companies.set(company.realmId, company);
    }
    this.#nextRealm = BigInt(state.nextRealm);
    this.oauth.restore(state.oauth);
    for (const { app, connections } of apps) {
      for (const [realmId, connectedAt] of Object.entries(connections)) app.connections.set(realmId, connectedAt);
    }
  }

  /** Calls `listener` whenever {@link state} would answer differently (not for the clock alone); returns the unsubscribe. */
  onStateChange(listener: () => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  #stateChanged(): void {
    for (const listener of this.#stateListeners) listener();
  }

  company(realmId: string): Company {
    const company = this.#companies.get(realmId);
    if (!company) throw new SandboxError("UNKNOWN_COMPANY", `no company ${realmId}`);
    return company;
  }

  companies(): Company[] {
    return [...this.#companies.values()];
  }

  registerApp(input: WebhookAppInput): WebhookAppSettings {
    const settings = WebhookAppSettings.parse(input);
    if (this.#apps.has(settings.appId))
      throw new SandboxError("INVALID_REQUEST", `app ${settings.appId} exists already`);
    this.#apps.set(settings.appId, {
      settings,
      sender: new WebhookSender(settings, this.clock, this.#random),
      connections: new Map(),
    });
    return settings;
  }

  /** Connects a company to an app without the browser flow, as if consent was given now; returns its tokens. */
  connect(appId: string, realmId: string): TokenSet {
    this.company(realmId);
    this.#app(appId).connections.set(realmId, this.clock.now());
    return this.oauth.connect(appId, realmId);
  }

  /** The companies connected to the app now (consented, not revoked). */
  connectedRealms(appId: string): string[] {
    return [...this.#app(appId).connections.keys()];
  }

  disconnect(appId: string, realmId: string): void {
    this.#app(appId).connections.delete(realmId);
    this.oauth.revokeCompany(appId, realmId);
  }

  webhooks(appId: string): WebhookSender {
    return this.#app(appId).sender;
  }

  deliveries(appId: string): DeliveryState {
    return this.webhooks(appId).state();
  }

  setWebhookFaults(appId: string, faults: readonly WebhookFault[]): void {
    this.webhooks(appId).setFaults(faults);
  }

  setApiBehaviour(input: ApiBehaviourInput): ApiBehaviour {
    this.#behaviour = ApiBehaviour.parse(input);
    this.#serverErrors = new FaultDraws(this.#behaviour.serverErrors, this.#random);
    this.#malformed = new FaultDraws(this.#behaviour.malformedAnswers, this.#random);
    this.#tokenFaults = new FaultDraws(this.#behaviour.tokenFaults, this.#random);
    return this.#behaviour;
  }

  /**
   * Calls `listener` after each page of query results is sent, before the next page can be asked
   * for: a test changes the data there to race a paged listing. Returns the unsubscribe.
   */
  onQueryPage(listener: (page: QueryPage) => void): () => void {
    this.#pageListeners.add(listener);
    return () => this.#pageListeners.delete(listener);
  }

  /** Every answer of the token endpoint so far, oldest first. */
  tokenLog(): readonly TokenRecord[] {
    return [...this.#tokenLog];
  }

  apiStats(): ApiStats {
    return structuredClone(this.#stats);
  }

  #dispatch(change: ChangeRecord): void {
    this.#stateChanged();
    for (const app of this.#apps.values()) {
      const connectedAt = app.connections.get(change.realmId);
      if (connectedAt !== undefined && change.at >= connectedAt) app.sender.offer(change);
    }
  }

  #app(appId: string): App {
    const app = this.#apps.get(appId);
    if (!app) throw new SandboxError("UNKNOWN_APP", `no app ${appId}`);
    return app;
  }

  #httpApp(): express.Express {
    const app = express();
    app.disable("x-powered-by");
    app.use(intuitTid);
    app.use(malformedAnswers({ draws: () => this.#malformed, spoiled: () => this.#stats.malformedAnswers++ }));
    app.use(
      oauthRouter({
        oauth: this.oauth,
        appByClient: (clientId, clientSecret) => {
          const found = [...this.#apps.values()].find(
            (a) =>
              a.settings.clientId === clientId &&
              (clientSecret === undefined || a.settings.clientSecret === clientSecret),
          );
          return found && { appId: found.settings.appId, redirectUris: found.settings.redirectUris };
        },
        companyForConsent: (realmId) =>
          realmId && this.#companies.has(realmId) ? realmId : this.createCompany().realmId,
        connected: (appId, realmId) => {
          this.#app(appId).connections.set(realmId, this.clock.now());
          this.#stateChanged();
        },
        disconnected: (appId, realmId) => {
          this.#app(appId).connections.delete(realmId);
          this.#stateChanged();
        },
        tokenRequest: () => {
          this.#stats.tokenRequests++;
          const slow = this.#tokenFaults.draw((fault) => fault.kind === "slow");
          const refuse = this.#tokenFaults.draw((fault) => fault.kind !== "slow")?.kind;
          return {
            ...(slow?.delayMs ? { delayMs: slow.delayMs } : {}),
            ...(refuse === undefined || refuse === "slow" ? {} : { refuse }),
          };
        },
        tokenAnswered: (record) => this.#tokenLog.push(record),
        now: () => this.clock.now(),
      }),
    );
    app.use(
      qboApiRouter({
        behaviour: () => this.#behaviour,
        limiter: this.#limiter,
        authenticate: (token, realmId) => this.oauth.authenticate(token, realmId),
        company: (realmId) => this.#companies.get(realmId),
        now: () => this.clock.now(),
        serverError: () => this.#serverErrors.draw()?.status,
        pageServed: (page) => {
          for (const listener of this.#pageListeners) listener(page);
        },
        count: (realmId, what) => {
          if (what === "throttled" || what === "serverError") {
            const table = what === "throttled" ? this.#stats.throttled : this.#stats.serverErrors;
            table[realmId] = (table[realmId] ?? 0) + 1;
            return;
          }
          const perRealm = this.#stats.requests[realmId] ?? {};
          perRealm[what] = (perRealm[what] ?? 0) + 1;
          this.#stats.requests[realmId] = perRealm;
        },
      }),
    );
    app.use("/_sandbox", controlRouter(this));
    return app;
  }
}
