import {
  GraphThresholdsStyleConfigBuilder,
  GraphThresholdsStyleMode,
  LegendDisplayMode,
  LegendPlacement,
  VizLegendOptionsBuilder,
} from "@grafana/grafana-foundation-sdk/common";
import {
  type Dashboard,
  DashboardBuilder,
  DatasourceVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
} from "@grafana/grafana-foundation-sdk/dashboard";
import { DataqueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";

/** Every panel reads the Prometheus the viewer picks (the `datasource` variable). */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, filled in by Grafana.
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };
/** Grafana's rate window: at least four scrape intervals, whatever the scrape interval is. */
const RATE = "$__rate_interval";

interface Query {
  readonly expr: string;
  readonly legend?: string;
}

interface PanelSpec {
  readonly title: string;
  readonly description: string;
  readonly unit: string;
  readonly queries: readonly Query[];
  /** A red line (and red from there) at this value: the budget or objective the panel is about. */
  readonly limit?: number;
}

const target = (query: Query, index: number) =>
  new DataqueryBuilder()
    .expr(query.expr)
    .legendFormat(query.legend ?? "__auto")
    .refId(String.fromCharCode(65 + index));

const limitThresholds = (limit: number) =>
  new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: "green" },
    { value: limit, color: "red" },
  ]);

function timeseries(spec: PanelSpec): TimeseriesPanel {
  const panel = new TimeseriesPanel()
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.List)
        .placement(LegendPlacement.Bottom)
        .calcs([]),
    )
    .height(8)
    .span(12);
  spec.queries.forEach((query, i) => {
    panel.withTarget(target(query, i));
  });
  if (spec.limit !== undefined) {
    panel
      .thresholds(limitThresholds(spec.limit))
      .thresholdsStyle(new GraphThresholdsStyleConfigBuilder().mode(GraphThresholdsStyleMode.Dashed));
  }
  return panel;
}

function stat(spec: PanelSpec): StatPanel {
  const panel = new StatPanel()
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .height(4)
    .span(6);
  spec.queries.forEach((query, i) => {
    panel.withTarget(target(query, i));
  });
  if (spec.limit !== undefined) panel.thresholds(limitThresholds(spec.limit));
  return panel;
}

function dashboard(uid: string, title: string, description: string): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(["qbo-webhooks"])
    .refresh("30s")
    .time({ from: "now-6h", to: "now" })
    .timezone("browser")
    .withVariable(new DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"));
}

const ackQuantile = (q: number) =>
  `histogram_quantile(${q}, sum by (le) (rate(qbo_webhook_ack_duration_seconds_bucket[${RATE}])))`;
const freshnessQuantile = (q: number) =>
  `histogram_quantile(${q}, sum by (le) (rate(qbo_event_freshness_seconds_bucket[${RATE}])))`;

const ackLatency = timeseries({
  title: "Webhook answers against QuickBooks' 3 s budget",
  description: "How long QuickBooks waits for our answer; after 3 s it counts the delivery as failed.",
  unit: "s",
  limit: 3,
  queries: [
    { expr: ackQuantile(0.5), legend: "p50" },
    { expr: ackQuantile(0.99), legend: "p99" },
  ],
});
const answersByReason = timeseries({
  title: "Webhook answers by code and reason",
  description: "200 stored/duplicate/quarantined; 401 unsigned; 503 not stored (QuickBooks retries those).",
  unit: "reqps",
  queries: [
    { expr: `sum by (code, reason) (rate(qbo_webhook_requests_total[${RATE}]))`, legend: "{{code}} {{reason}}" },
  ],
});
const webhookSilence = timeseries({
  title: "Time since the last signed webhook",
  description: "Long silence while CDC finds missed changes means deliveries fail before they reach us.",
  unit: "s",
  queries: [{ expr: "time() - max(qbo_webhook_last_received_timestamp_seconds)", legend: "silence" }],
});
const quickbooksClock = timeseries({
  title: "Time left before QuickBooks backs off or blacklists",
  description:
    "While deliveries fail: until today's queue reaches its 20-minute step, or until the legacy policy blacklists the endpoint (recorded by the alert rules).",
  unit: "s",
  queries: [
    { expr: "qbo:quickbooks_twenty_minute_step_eta_seconds", legend: "to the 20-minute step" },
    { expr: "qbo:quickbooks_blacklist_eta_seconds", legend: "to the blacklist" },
  ],
});
const freshness = timeseries({
  title: "Freshness: a change in QuickBooks to its application here",
  description: "The objective is p99 under 60 s.",
  unit: "s",
  limit: 60,
  queries: [
    { expr: freshnessQuantile(0.5), legend: "p50" },
    { expr: freshnessQuantile(0.99), legend: "p99" },
  ],
});
const backlog = timeseries({
  title: "Backlog per stage",
  description: "Messages waiting per durable consumer of the pipeline.",
  unit: "short",
  queries: [{ expr: "sum by (stream, consumer) (qbo_consumer_pending)", legend: "{{stream}} {{consumer}}" }],
});
const backlogAge = timeseries({
  title: "Oldest unprocessed message per work stream",
  description: "Nothing in the work streams expires; old work means a stage stopped.",
  unit: "s",
  limit: 300,
  queries: [{ expr: "max by (stream) (qbo_stream_oldest_unprocessed_seconds)", legend: "{{stream}}" }],
});
const deadLetters = timeseries({
  title: "Dead letters by stage",
  description: "Waiting in QBO_DLQ; `qbo-webhooks dlq list` shows them.",
  unit: "short",
  queries: [{ expr: "sum by (stage) (qbo_dlq_messages)", legend: "{{stage}}" }],
});
const realmsByStatus = timeseries({
  title: "Companies by status",
  description: "Connected, awaiting consent, disconnected.",
  unit: "short",
  queries: [{ expr: "sum by (status) (qbo_realms)", legend: "{{status}}" }],
});
const apiCalls = timeseries({
  title: "QuickBooks API calls by status",
  description: "429: QuickBooks throttles us; the processors and the reconciler back off.",
  unit: "reqps",
  queries: [{ expr: `sum by (status) (rate(qbo_api_requests_total[${RATE}]))`, legend: "{{status}}" }],
});
const throttled = stat({
  title: "QuickBooks 429s",
  description: "Throttled API calls per second.",
  unit: "reqps",
  queries: [{ expr: `sum(rate(qbo_api_requests_total{status="429"}[${RATE}])) or vector(0)`, legend: "429" }],
});

export const overview = (): Dashboard =>
  dashboard(
    "qbo-webhooks-overview",
    "qbo-webhooks / Overview",
    "Is QuickBooks reaching us, do we keep up, is the feed fresh.",
  )
    .withRow(new RowBuilder("QuickBooks' deliveries"))
    .withPanel(ackLatency)
    .withPanel(answersByReason)
    .withPanel(webhookSilence)
    .withPanel(quickbooksClock)
    .withRow(new RowBuilder("The pipeline"))
    .withPanel(freshness)
    .withPanel(backlog)
    .withPanel(backlogAge)
    .withPanel(deadLetters)
    .withRow(new RowBuilder("Companies and QuickBooks' API"))
    .withPanel(realmsByStatus)
    .withPanel(apiCalls)
    .withPanel(throttled)
    .build();

export const realmsAndApi = (): Dashboard =>
  dashboard(
    "qbo-webhooks-realms",
    "qbo-webhooks / Companies and QuickBooks API",
    "Connections, tokens, CDC and the calls made to QuickBooks.",
  )
    .withRow(new RowBuilder("Companies"))
    .withPanel(realmsByStatus)
    .withPanel(
      timeseries({
        title: "Token refreshes by result",
        description: "refused: invalid_grant (the company must connect again); client_refused: invalid_client.",
        unit: "ops",
        queries: [{ expr: `sum by (result) (rate(qbo_token_refreshes_total[${RATE}]))`, legend: "{{result}}" }],
      }),
    )
    .withPanel(
      stat({
        title: "Client credentials refused",
        description: "1 while QuickBooks refuses the app's client id or secret.",
        unit: "short",
        limit: 1,
        queries: [{ expr: "max(qbo_oauth_client_refused)", legend: "refused" }],
      }),
    )
    .withPanel(
      stat({
        title: "Reconciler leaders",
        description: "Exactly one replica should lead.",
        unit: "short",
        queries: [{ expr: "sum(qbo_reconciler_leader)", legend: "leaders" }],
      }),
    )
    .withRow(new RowBuilder("CDC"))
    .withPanel(
      timeseries({
        title: "CDC runs by result",
        description: "Gap filling and the daily verification, per company.",
        unit: "ops",
        queries: [{ expr: `sum by (result) (rate(qbo_cdc_runs_total[${RATE}]))`, legend: "{{result}}" }],
      }),
    )
    .withPanel(
      timeseries({
        title: "Changes found by CDC that no webhook announced",
        description: "Rising: webhooks fail outside our view (QboWebhooksSilent).",
        unit: "short",
        queries: [
          { expr: `sum(increase(qbo_cdc_missed_events_total[${RATE}]))`, legend: "missed" },
          { expr: `sum(increase(qbo_cdc_repairs_total[${RATE}]))`, legend: "repaired" },
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: "CDC lag",
        description:
          "Now minus the oldest verified point over connected companies; QuickBooks' CDC reaches back 30 days.",
        unit: "s",
        limit: 86_400,
        queries: [{ expr: "max(qbo_cdc_lag_seconds)", legend: "lag" }],
      }),
    )
    .withRow(new RowBuilder("QuickBooks API and deliveries to the app"))
    .withPanel(
      timeseries({
        title: "QuickBooks API calls by operation and status",
        description: "What the processors and the reconciler ask QuickBooks.",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (operation, status) (rate(qbo_api_requests_total[${RATE}]))`,
            legend: "{{operation}} {{status}}",
          },
        ],
      }),
    )
    .withPanel(throttled)
    .withPanel(
      timeseries({
        title: "Deliveries to the app by result",
        description: "failed: the app refused; superseded: a replay out of date, skipped.",
        unit: "ops",
        queries: [{ expr: `sum by (result) (rate(qbo_delivery_attempts_total[${RATE}]))`, legend: "{{result}}" }],
      }),
    )
    .withPanel(
      timeseries({
        title: "Companies blocked by the app, and events held for paused companies",
        description: "A refused change blocks its company's later changes; a paused company's events wait.",
        unit: "short",
        queries: [
          { expr: "sum(qbo_delivery_blocked_realms)", legend: "blocked" },
          { expr: "sum(qbo_processor_held_events)", legend: "held (paused)" },
        ],
      }),
    )
    .build();

export const natsAndJetStream = (): Dashboard =>
  dashboard(
    "qbo-webhooks-nats",
    "qbo-webhooks / NATS and JetStream",
    "The streams the pipeline stores everything in, and who is connected.",
  )
    .withRow(new RowBuilder("Streams"))
    .withPanel(
      timeseries({
        title: "Stream fill",
        description: "Bytes over the stream's limit; at 1 a work stream refuses messages and the ingress answers 503.",
        unit: "percentunit",
        limit: 0.8,
        queries: [{ expr: "max by (stream) (qbo_stream_fill_ratio)", legend: "{{stream}}" }],
      }),
    )
    .withPanel(backlogAge)
    .withPanel(backlog)
    .withPanel(deadLetters)
    .withRow(new RowBuilder("Services"))
    .withPanel(
      timeseries({
        title: "Replicas ready, and connected to NATS, by service",
        description: "Ready: connected to NATS with its streams usable.",
        unit: "short",
        queries: [
          { expr: "sum by (service) (qbo_ready)", legend: "{{service}} ready" },
          { expr: "sum by (service) (qbo_nats_connected)", legend: "{{service}} connected" },
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: "Notifications not stored, by reason",
        description: "503s: JetStream did not take them (QuickBooks retries).",
        unit: "reqps",
        queries: [
          {
            expr: `sum by (reason) (rate(qbo_webhook_requests_total{code="503"}[${RATE}])) or vector(0)`,
            legend: "{{reason}}",
          },
        ],
      }),
    )
    .withPanel(
      timeseries({
        title: "Partitions owned per processor",
        description: "Their sum should equal the partition count.",
        unit: "short",
        queries: [{ expr: "sum by (pod, service) (qbo_partitions_owned)", legend: "{{pod}}" }],
      }),
    )
    .withPanel(
      timeseries({
        title: "Memory (RSS) by service",
        description: "Resident memory of each replica.",
        unit: "bytes",
        queries: [
          {
            expr: 'max by (service, pod) (process_resident_memory_bytes{service=~".+"})',
            legend: "{{service}} {{pod}}",
          },
        ],
      }),
    )
    .build();

export const objectives = (): Dashboard =>
  dashboard(
    "qbo-webhooks-objectives",
    "qbo-webhooks / Objectives",
    "The objectives the alerts defend: answers to QuickBooks, their latency, freshness and backlog.",
  )
    .withRow(new RowBuilder("QuickBooks' deliveries answered 200 (objective 99.5%)"))
    .withPanel(
      timeseries({
        title: "Failed answers (share) per window",
        description: "The page fires when both 5 min and 1 h exceed 14.4 × the 0.5% budget (7.2%).",
        unit: "percentunit",
        limit: 0.072,
        queries: [
          { expr: "qbo:webhook_failed_answers:ratio_rate5m", legend: "5 min" },
          { expr: "qbo:webhook_failed_answers:ratio_rate1h", legend: "1 h" },
          { expr: "qbo:webhook_failed_answers:ratio_rate6h", legend: "6 h" },
        ],
      }),
    )
    .withPanel(
      stat({
        title: "Answers under 2.5 s",
        description: "Share of webhook answers well inside QuickBooks' 3 s.",
        unit: "percentunit",
        queries: [
          {
            expr: `sum(rate(qbo_webhook_ack_duration_seconds_bucket{le="2.5"}[${RATE}])) / sum(rate(qbo_webhook_ack_duration_seconds_count[${RATE}]))`,
            legend: "under 2.5 s",
          },
        ],
      }),
    )
    .withPanel(ackLatency)
    .withRow(new RowBuilder("Freshness and backlog"))
    .withPanel(freshness)
    .withPanel(backlogAge)
    .build();

/** Every dashboard, by the file name the chart carries it under. */
export function dashboards(): Record<string, Dashboard> {
  return {
    "qbo-webhooks-overview.json": overview(),
    "qbo-webhooks-realms.json": realmsAndApi(),
    "qbo-webhooks-nats.json": natsAndJetStream(),
    "qbo-webhooks-objectives.json": objectives(),
  };
}

/** Every panel query of every dashboard, with the panel it belongs to. */
export function dashboardQueries(): { dashboard: string; panel: string; expr: string }[] {
  return Object.entries(dashboards()).flatMap(([file, board]) =>
    (board.panels ?? []).flatMap((panel) =>
      "targets" in panel
        ? (panel.targets ?? []).map((t) => ({
            dashboard: file,
            panel: panel.title ?? "",
            expr: "expr" in t && typeof t.expr === "string" ? t.expr : "",
          }))
        : [],
    ),
  );
}
