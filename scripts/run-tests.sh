#!/usr/bin/env bash
# `npm test`: sets up, then runs every package's tests against real nats-servers and prints one
# closing line. The packages whose tests time failovers, replica churn and CDC paging (processor,
# reconciler) run alone; the others two at a time, which a 2-core machine holds (tried: the timed
# ones failed when they shared it). Every package runs even after a failure.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh || exit 1
# The chart's tests run helm, kubeconform and a real kube-apiserver: built once per machine (15-35 minutes), then cached.
bash scripts/ensure-k8s-tools.sh || exit 1
rm -rf packages/*/.vitest services/*/.vitest test/*/.vitest
timed=(--filter=@qbo-webhooks/processor --filter=@qbo-webhooks/reconciler)
npx turbo run test --concurrency=2 --continue --filter='!@qbo-webhooks/processor' --filter='!@qbo-webhooks/reconciler'
shared=$?
npx turbo run test --concurrency=1 --continue "${timed[@]}"
alone=$?
node scripts/test-summary.mjs
summary=$?
exit $((shared || alone || summary))
