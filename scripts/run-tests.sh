#!/usr/bin/env bash
# `npm test`: sets up, then runs every package's tests against real nats-servers and prints one
# closing line. Every package runs even after a failure.
#
# How the packages share this 2-core machine: the packages whose tests time failovers, lease pauses
# and CDC paging (processor, reconciler) run alone (tried: they failed when they shared it), and so does
# test/deploy's alerting drill, last (beside the lanes, a CLI test next to it timed out once). Before
# them the others run in two lanes, one package at a time in each: the two longest (the chart on a real
# control plane, the token churn) in one lane, everything else, including any new package, in the other.
# Two lanes of about equal length end sooner than turbo's own order, which ran the longest ones last.
# (Tried: a third lane with the processor's replica-churn test, which mostly waits out a two-minute
# outage, made the token churn and a CLI test fail under the load.)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || exit 1
# The chart's tests run helm, kubeconform and a real Kubernetes control plane: built once per machine
# (about an hour of CPU), then cached.
bash scripts/ensure-k8s-tools.sh || exit 1
# The alert rules' tests run promtool; the alerting drill, Prometheus and Alertmanager.
bash scripts/ensure-prometheus.sh || exit 1
rm -rf packages/*/.vitest services/*/.vitest test/*/.vitest
# Setup built everything the tests load; the lanes run the test tasks alone (--only), so that two
# turbo processes never write the same build outputs.
alone=(--filter=@qbo-webhooks/processor --filter=@qbo-webhooks/reconciler)
long=(--filter=@qbo-webhooks/deploy-tests --filter=@qbo-webhooks/quickbooks)
rest=(--filter='!@qbo-webhooks/processor' --filter='!@qbo-webhooks/reconciler'
  --filter='!@qbo-webhooks/deploy-tests' --filter='!@qbo-webhooks/quickbooks')
lane() { npx turbo run test --only --concurrency=1 --continue "$@"; }
lane "${long[@]}" &
long_lane=$!
lane "${rest[@]}"
rest_status=$?
wait "$long_lane"
long_status=$?
lane "${alone[@]}"
alone_status=$?
# The alerting drill keeps time on a 60-times clock with Prometheus and Alertmanager: alone, last.
npm run test:drill --silent -w @qbo-webhooks/deploy-tests
drill_status=$?
node scripts/test-summary.mjs
summary=$?
exit $((rest_status || long_status || alone_status || drill_status || summary))
