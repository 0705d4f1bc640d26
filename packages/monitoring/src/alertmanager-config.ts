import { z } from "zod";

const Matcher = z.object({
  name: z.string(),
  matchType: z.enum(["=", "!=", "=~", "!~"]).default("="),
  value: z.string().default(""),
});
const SecretKey = z.object({ name: z.string(), key: z.string() });
const Route = z.object({
  receiver: z.string(),
  groupBy: z.array(z.string()).optional(),
  groupWait: z.string().optional(),
  groupInterval: z.string().optional(),
  repeatInterval: z.string().optional(),
  matchers: z.array(Matcher).optional(),
  routes: z.array(z.object({ receiver: z.string(), matchers: z.array(Matcher).optional() })).optional(),
});
const Receiver = z.object({
  name: z.string(),
  pagerdutyConfigs: z
    .array(
      z.object({
        routingKey: SecretKey,
        url: z.string().optional(),
        sendResolved: z.boolean().optional(),
        severity: z.string().optional(),
        description: z.string().optional(),
        details: z.array(z.object({ key: z.string(), value: z.string() })).optional(),
        pagerDutyLinkConfigs: z.array(z.object({ href: z.string(), alt: z.string().optional() })).optional(),
      }),
    )
    .optional(),
  slackConfigs: z
    .array(
      z.object({
        apiURL: SecretKey,
        channel: z.string().optional(),
        sendResolved: z.boolean().optional(),
        title: z.string().optional(),
        text: z.string().optional(),
      }),
    )
    .optional(),
  webhookConfigs: z.array(z.object({ urlSecret: SecretKey, sendResolved: z.boolean().optional() })).optional(),
});

/** The parts of a prometheus-operator AlertmanagerConfig (monitoring.coreos.com/v1alpha1) the chart writes. */
export const AlertmanagerConfigSpec = z.object({
  route: Route,
  inhibitRules: z
    .array(
      z.object({
        sourceMatch: z.array(Matcher),
        targetMatch: z.array(Matcher),
        equal: z.array(z.string()).optional(),
      }),
    )
    .optional(),
  receivers: z.array(Receiver),
});
export type AlertmanagerConfigSpec = z.infer<typeof AlertmanagerConfigSpec>;

/** Reads a Secret's key: what the operator does with the `SecretKeySelector`s of the resource. */
export type SecretReader = (secret: { name: string; key: string }) => string;

const matcher = (m: z.infer<typeof Matcher>) => `${m.name}${m.matchType}${JSON.stringify(m.value)}`;
/** Leaves out what is not set, as Alertmanager's own files do. */
const defined = (o: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/**
 * The same routing as a plain Alertmanager configuration (alertmanager.yml, 0.25), for an
 * Alertmanager without the operator. The operator would also prefix the receivers' names and limit
 * the routes to the resource's namespace; a plain configuration serves one installation.
 */
export function plainAlertmanagerConfig(spec: AlertmanagerConfigSpec, readSecret: SecretReader): object {
  const { route } = spec;
  return {
    route: defined({
      receiver: route.receiver,
      group_by: route.groupBy,
      group_wait: route.groupWait,
      group_interval: route.groupInterval,
      repeat_interval: route.repeatInterval,
      matchers: route.matchers?.map(matcher),
      routes: route.routes?.map((r) => defined({ receiver: r.receiver, matchers: r.matchers?.map(matcher) })),
    }),
    inhibit_rules: (spec.inhibitRules ?? []).map((rule) =>
      defined({
        source_matchers: rule.sourceMatch.map(matcher),
        target_matchers: rule.targetMatch.map(matcher),
        equal: rule.equal,
      }),
    ),
    receivers: spec.receivers.map((receiver) =>
      defined({
        name: receiver.name,
        pagerduty_configs: receiver.pagerdutyConfigs?.map((pd) =>
          defined({
            routing_key: readSecret(pd.routingKey),
            url: pd.url,
            send_resolved: pd.sendResolved,
            severity: pd.severity,
            description: pd.description,
            details: pd.details && Object.fromEntries(pd.details.map((d) => [d.key, d.value])),
            links: pd.pagerDutyLinkConfigs?.map((link) => defined({ href: link.href, text: link.alt })),
          }),
        ),
        slack_configs: receiver.slackConfigs?.map((slack) =>
          defined({
            api_url: readSecret(slack.apiURL),
            channel: slack.channel,
            send_resolved: slack.sendResolved,
            title: slack.title,
            text: slack.text,
          }),
        ),
        webhook_configs: receiver.webhookConfigs?.map((hook) =>
          defined({ url: readSecret(hook.urlSecret), send_resolved: hook.sendResolved }),
        ),
      }),
    ),
  };
}
