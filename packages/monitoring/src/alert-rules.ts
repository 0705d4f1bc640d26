import { promDuration } from "./duration.js";

/** `page` wakes someone (PagerDuty); `ticket` waits for working hours (Slack, a webhook). */
export type Severity = "page" | "ticket";

/**
 * QuickBooks' retry policy for failed deliveries (../shared/QBO.md). `current`: one ordered queue per
 * app, retried after 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, … with nothing newer sent meanwhile.
 * `legacy`: each delivery retried at +20, +50 and +100 minutes, then the endpoint is blacklisted.
 */
export type DeliveryPolicy = "current" | "legacy";
export const DELIVERY_POLICIES: readonly DeliveryPolicy[] = ["current", "legacy"];

export interface RuleOptions {
  readonly policy: DeliveryPolicy;
  /**
   * Multiplies every duration (windows, `for`, thresholds in seconds): 1 in production; a drill on a
   * sandbox whose clock runs 60× faster renders the rules with 1/60.
   */
  readonly timeScale: number;
  /** Where `docs/runbooks/` is served; each alert links `<base><Alert>.md`. */
  readonly runbookBaseUrl: string;
}

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: { readonly severity: Severity } & Record<string, string>;
  readonly annotations: { readonly summary: string; readonly description: string; readonly runbook_url: string };
}

export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
}

export interface RuleGroup {
  readonly name: string;
  readonly rules: readonly (AlertRule | RecordingRule)[];
}

/** Seconds QuickBooks' legacy policy waits from a failed delivery to blacklisting: retries at +20, +50, +100 min. */
export const LEGACY_BLACKLIST_AFTER_SECONDS = 100 * 60;
/**
 * Seconds from a failed delivery until today's queue moves to its 20-minute step: the retries after
 * 10 s, 20 s, 30 s and 5 min have failed too (10 + 20 + 30 + 300).
 */
export const CURRENT_TWENTY_MINUTE_STEP_AFTER_SECONDS = 10 + 20 + 30 + 300;
/** The page under the legacy policy comes this long before the blacklist at the latest. */
export const LEGACY_PAGE_MARGIN_SECONDS = 95 * 60;
/** The page under today's queue comes this long after deliveries start failing at the latest. */
export const CURRENT_PAGE_AFTER_SECONDS = 3 * 60;

/** Matches a service's own `service` label, also when a ServiceMonitor renamed it to the Service's name. */
const service = (name: string) => `service=~"(.+-)?${name}"`;
/** Requests that could be QuickBooks' (not refused as unsigned or oversized before anything was read). */
const FROM_QUICKBOOKS = `reason!~"missing_signature|bad_signature|too_large"`;
/** The webhook answers' objective: this share of QuickBooks' deliveries answered 200. */
const ANSWER_OBJECTIVE = 0.995;
const ERROR_BUDGET = 1 - ANSWER_OBJECTIVE;
const DAY = 86_400;

/** The alerting rules of ../shared/DESIGN.md ("Alerting idea"), for one delivery policy. */
export function ruleGroups(options: RuleOptions): RuleGroup[] {
  const d = (seconds: number) => promDuration(seconds * options.timeScale);
  const s = (seconds: number) => String(seconds * options.timeScale);
  const alert = (
    name: string,
    severity: Severity,
    rule: { expr: string; for?: number; summary: string; description: string; labels?: Record<string, string> },
  ): AlertRule => ({
    alert: name,
    expr: rule.expr,
    ...(rule.for === undefined ? {} : { for: d(rule.for) }),
    labels: { severity, ...rule.labels },
    annotations: {
      summary: rule.summary,
      description: rule.description,
      runbook_url: `${options.runbookBaseUrl}${name}.md`,
    },
  });
  const failedRatio = (window: number) =>
    `(sum(rate(qbo_webhook_requests_total{code!="200",${FROM_QUICKBOOKS}}[${d(window)}])) or vector(0))
  / sum(rate(qbo_webhook_requests_total{${FROM_QUICKBOOKS}}[${d(window)}]))`;
  const readyIngresses = `(sum(qbo_ready{${service("ingress")}}) or vector(0))`;

  const policyRules: (AlertRule | RecordingRule)[] =
    options.policy === "legacy"
      ? [
          {
            record: "qbo:quickbooks_blacklist_eta_seconds",
            expr: `qbo:quickbooks_failing_since_timestamp_seconds + ${s(LEGACY_BLACKLIST_AFTER_SECONDS)} - time()`,
          },
          alert("QboQuickBooksBlacklistRisk", "page", {
            expr: `qbo:quickbooks_blacklist_eta_seconds < ${s(LEGACY_PAGE_MARGIN_SECONDS)}`,
            summary: "QuickBooks will blacklist the webhook endpoint unless deliveries succeed again",
            description:
              'Deliveries have been failing since {{ with query "qbo:quickbooks_failing_since_timestamp_seconds" }}{{ . | first | value | humanizeTimestamp }}{{ end }}. Under QuickBooks\' legacy policy a failed delivery is retried at +20, +50 and +100 minutes, then the endpoint is blacklisted: about {{ $value | humanizeDuration }} left.',
            labels: { policy: "legacy" },
          }),
        ]
      : [
          {
            record: "qbo:quickbooks_twenty_minute_step_eta_seconds",
            expr: `qbo:quickbooks_failing_since_timestamp_seconds + ${s(CURRENT_TWENTY_MINUTE_STEP_AFTER_SECONDS)} - time()`,
          },
          alert("QboQuickBooksBackoffRisk", "page", {
            expr: `qbo:quickbooks_twenty_minute_step_eta_seconds < ${s(CURRENT_TWENTY_MINUTE_STEP_AFTER_SECONDS - CURRENT_PAGE_AFTER_SECONDS)}`,
            summary: "QuickBooks' delivery queue for this app is backing off",
            description:
              'Deliveries have been failing for {{ with query "time() - qbo:quickbooks_failing_since_timestamp_seconds" }}{{ . | first | value | humanizeDuration }}{{ end }}. QuickBooks holds every newer notification of every company behind the failed one; in {{ $value | humanizeDuration }} its retries reach the 20-minute step, then hours.',
            labels: { policy: "current" },
          }),
        ];

  return [
    {
      name: "qbo-webhooks.quickbooks-deliveries",
      rules: [
        // Named by the nominal window, so a drill's scaled rules record the same series.
        ...[5 * 60, 30 * 60, 3600, 6 * 3600].map((window) => ({
          record: `qbo:webhook_failed_answers:ratio_rate${promDuration(window)}`,
          expr: failedRatio(window),
        })),
        {
          // 1 while QuickBooks' last delivery got no 200 (a failure answered after the last success),
          // or no ingress can take one. Absent otherwise.
          record: "qbo:quickbooks_deliveries_failing",
          expr: `vector(1) and on() (
  (max(qbo_webhook_last_answer_timestamp_seconds{outcome="failed"}) > (max(qbo_webhook_last_answer_timestamp_seconds{outcome="accepted"}) or vector(0)))
  or on() (${readyIngresses} < 1)
)`,
        },
        {
          // When the current run of failures began: kept from its own last value while failures go
          // on (a pause shorter than the lookback does not reset it), now when they start.
          record: "qbo:quickbooks_failing_since_timestamp_seconds",
          expr: `(max_over_time(qbo:quickbooks_failing_since_timestamp_seconds[${d(10 * 60)}]) and on() qbo:quickbooks_deliveries_failing)
or on() (vector(time()) and on() qbo:quickbooks_deliveries_failing)`,
        },
        ...policyRules,
        alert("QboQuickBooksDeliveriesFailing", "ticket", {
          expr: "qbo:quickbooks_deliveries_failing",
          summary: "QuickBooks' last webhook delivery failed",
          description:
            "The last answer QuickBooks got was not a 200, or no ingress is ready. QuickBooks retries it; the policy alert pages before its retries run out.",
        }),
        alert("QboWebhookAnswersFailing", "page", {
          expr: `qbo:webhook_failed_answers:ratio_rate5m > ${14.4 * ERROR_BUDGET} and qbo:webhook_failed_answers:ratio_rate1h > ${14.4 * ERROR_BUDGET}`,
          for: 2 * 60,
          summary: "The ingress fails QuickBooks' webhook deliveries",
          description: `{{ $value | humanizePercentage }} of QuickBooks' deliveries got no 200 in the last 5 minutes (and over the hour): the ${ANSWER_OBJECTIVE * 100}% objective's budget burns 14.4 times too fast.`,
        }),
        alert("QboWebhookAnswersFailingSlowly", "ticket", {
          expr: `qbo:webhook_failed_answers:ratio_rate30m > ${6 * ERROR_BUDGET} and qbo:webhook_failed_answers:ratio_rate6h > ${6 * ERROR_BUDGET}`,
          for: 15 * 60,
          summary: "Some of QuickBooks' webhook deliveries keep failing",
          description: `{{ $value | humanizePercentage }} of QuickBooks' deliveries got no 200 over 30 minutes and 6 hours: the ${ANSWER_OBJECTIVE * 100}% objective's budget burns 6 times too fast.`,
        }),
        alert("QboWebhookNotStored", "page", {
          expr: `sum by (reason) (increase(qbo_webhook_requests_total{reason=~"publish_timeout|nats_unavailable|stream_full|publish_rejected|publish_forbidden"}[${d(2 * 60)}])) > 0`,
          for: 2 * 60,
          summary: "The ingress cannot store notifications ({{ $labels.reason }})",
          description:
            "{{ $value | humanize }} notifications were answered 503 ({{ $labels.reason }}) in 2 minutes, for 2 minutes: NATS JetStream does not take them. QuickBooks retries them.",
        }),
        alert("QboIngressDown", "page", {
          expr: `${readyIngresses} < 1`,
          for: 60,
          summary: "No ingress replica is ready to take QuickBooks' webhooks",
          description: "No ingress pod reports ready (or none is scraped): every delivery from QuickBooks fails.",
        }),
        alert("QboWebhookAckNearTimeout", "page", {
          expr: `(sum(rate(qbo_webhook_ack_duration_seconds_count[${d(5 * 60)}])) - sum(rate(qbo_webhook_ack_duration_seconds_bucket{le="2.5"}[${d(5 * 60)}])))
  / sum(rate(qbo_webhook_ack_duration_seconds_count[${d(5 * 60)}])) > 0.01`,
          for: 2 * 60,
          summary: "Webhook answers come close to QuickBooks' 3-second limit",
          description:
            "{{ $value | humanizePercentage }} of webhook answers took over 2.5 s in the last 5 minutes; QuickBooks counts an answer after 3 s as a failed delivery.",
        }),
        alert("QboWebhookAckSlow", "ticket", {
          expr: `histogram_quantile(0.99, sum by (le) (rate(qbo_webhook_ack_duration_seconds_bucket[${d(5 * 60)}]))) > 1`,
          for: 10 * 60,
          summary: "Webhook answers are slow (p99 over 1 s)",
          description: "The 99th percentile of webhook answers is {{ $value | humanizeDuration }}; the budget is 3 s.",
        }),
        alert("QboWebhooksSilent", "page", {
          // Silence longer than five of the usual gaps between notifications (at least 30 min, at
          // most 6 h), while CDC finds changes that no webhook announced.
          expr: `(time() - (max(max_over_time(qbo_webhook_last_received_timestamp_seconds[${d(DAY)}])) or vector(0)))
  > clamp(5 / (sum(rate(qbo_webhook_requests_total{code="200"}[${d(DAY)}])) or vector(0)), ${s(30 * 60)}, ${s(6 * 3600)})
and on() sum(increase(qbo_cdc_missed_events_total[${d(3600)}])) > 0`,
          summary: "QuickBooks' webhooks stopped arriving while companies keep changing",
          description:
            "No signed webhook for {{ $value | humanizeDuration }}, yet CDC keeps finding changes no webhook announced: deliveries fail before they reach the ingress (DNS, TLS, the ingress controller, a disabled subscription).",
        }),
        alert("QboCdcFoundMissedChanges", "ticket", {
          expr: `sum(increase(qbo_cdc_missed_events_total[${d(3600)}])) > 0`,
          summary: "CDC found changes that no webhook announced",
          description:
            "{{ $value | humanize }} changes in the last hour were found by CDC, not announced by a webhook: some deliveries do not arrive.",
        }),
        alert("QboNotificationsQuarantined", "page", {
          expr: `sum(increase(qbo_webhook_requests_total{reason="quarantined"}[${d(15 * 60)}])) > 0`,
          summary: "Signed notifications are not understood (quarantined)",
          description:
            "{{ $value | humanize }} correctly signed notifications in 15 minutes had a shape the ingress does not understand: QuickBooks may have changed its format. They are kept in the dead-letter stream.",
        }),
      ],
    },
    {
      name: "qbo-webhooks.pipeline",
      rules: [
        alert("QboDeadLetters", "page", {
          expr: `sum by (stage) (delta(qbo_dlq_messages[${d(15 * 60)}])) > 0`,
          summary: "New dead letters from the {{ $labels.stage }} stage",
          description:
            "{{ $value | humanize }} messages were dead-lettered by {{ $labels.stage }} in 15 minutes; each is a change the feed or the app does not have yet.",
        }),
        alert("QboAppDeliveryFailing", "page", {
          expr: `(sum(qbo_delivery_blocked_realms) > 0) or on() (sum(rate(qbo_delivery_attempts_total{result="failed"}[${d(5 * 60)}])) > 0)`,
          for: 5 * 60,
          summary: "The app's endpoint refuses deliveries",
          description:
            "Deliveries to the app keep failing ({{ $value | humanize }}: blocked companies, or failures per second); each blocked company's later changes wait behind its refused one.",
        }),
        alert("QboBacklogOld", "page", {
          expr: `max by (stream) (qbo_stream_oldest_unprocessed_seconds) > ${s(5 * 60)}`,
          for: 5 * 60,
          summary: "Work in {{ $labels.stream }} waits too long",
          description: "The oldest unprocessed message in {{ $labels.stream }} is {{ $value | humanizeDuration }} old.",
        }),
        alert("QboFreshnessObjectiveMissed", "ticket", {
          expr: `histogram_quantile(0.99, sum by (le) (rate(qbo_event_freshness_seconds_bucket[${d(10 * 60)}]))) > ${s(60)}`,
          for: 10 * 60,
          summary: "Changes reach the copy late (p99 over 60 s)",
          description:
            "The 99th percentile from a change in QuickBooks to its application is {{ $value | humanizeDuration }}; the objective is 60 s.",
        }),
        alert("QboNatsUnreachable", "page", {
          expr: "sum by (service) (qbo_nats_connected) == 0",
          for: 2 * 60,
          summary: "No {{ $labels.service }} replica can reach NATS",
          description:
            "Every {{ $labels.service }} replica has lost its NATS connection for 2 minutes: nothing is stored, ordered or applied by it until NATS is back (the ingress answers 503).",
        }),
        alert("QboServiceNotReady", "page", {
          expr: "sum by (service) (qbo_ready) == 0",
          for: 3 * 60,
          summary: "No {{ $labels.service }} replica is ready",
          description:
            "Every {{ $labels.service }} replica says it cannot work (readiness is NATS connected and its streams usable): most often NATS is unreachable.",
        }),
        alert("QboJetStreamStorageNearLimit", "ticket", {
          expr: "max by (stream) (qbo_stream_fill_ratio) > 0.8",
          for: 10 * 60,
          summary: "{{ $labels.stream }} is {{ $value | humanizePercentage }} full",
          description: "At its byte limit a work stream refuses new messages and the ingress answers 503.",
        }),
        alert("QboJetStreamStorageFull", "page", {
          expr: "max by (stream) (qbo_stream_fill_ratio) > 0.95",
          for: 2 * 60,
          summary: "{{ $labels.stream }} is {{ $value | humanizePercentage }} full",
          description: "At its byte limit a work stream refuses new messages and the ingress answers 503.",
        }),
      ],
    },
    {
      name: "qbo-webhooks.companies",
      rules: [
        alert("QboNoReconcilerLeader", "page", {
          expr: "(sum(qbo_reconciler_leader) or vector(0)) < 1",
          for: 2 * 60,
          summary: "No reconciler leads",
          description:
            "Without a leader no CDC runs, no token is refreshed and no QuickBooksCompany resource is looked after.",
        }),
        alert("QboOAuthClientRefused", "page", {
          expr: "max(qbo_oauth_client_refused) > 0",
          for: 5 * 60,
          summary: "QuickBooks refuses the app's client id or secret (invalid_client)",
          description: "No token of any company can be refreshed until the client credentials are fixed.",
        }),
        alert("QboTokensRefused", "ticket", {
          expr: `sum(increase(qbo_token_refreshes_total{result="refused"}[${d(3600)}])) > 0`,
          summary: "QuickBooks refused a company's refresh token (invalid_grant)",
          description:
            "{{ $value | humanize }} refresh tokens were refused in the last hour; those companies are disconnected until someone connects them again.",
        }),
        alert("QboRealmsDisconnected", "ticket", {
          expr: 'sum(qbo_realms{status="disconnected"}) > 0',
          for: 15 * 60,
          summary: "{{ $value }} companies are disconnected",
          description: "Their changes are not followed until they are connected again.",
        }),
        alert("QboCdcLagging", "ticket", {
          expr: `max(qbo_cdc_lag_seconds) > ${s(DAY)}`,
          for: 30 * 60,
          summary: "A company has not been verified by CDC for over a day",
          description:
            "The least recently verified company is {{ $value | humanizeDuration }} behind; QuickBooks' CDC reaches back 30 days.",
        }),
      ],
    },
  ];
}
