#!/usr/bin/env bash
# Finds or builds the Kubernetes tools the chart's tests run (../shared/K8S.md has the facts): helm 3,
# helm 4, kubeconform with offline schemas (core and the CRDs the chart uses), etcd, kube-apiserver, kubectl,
# kube-controller-manager, kube-scheduler and kwok (simulated nodes, with its upstream stage files).
# Everything is built from the Go module proxy (or taken from PyPI) at the versions pinned below, stamped
# with its version, and kept outside the clone: CI clones afresh on the same machine, and a cold build costs
# about an hour of CPU once.
#
# Usage: scripts/ensure-k8s-tools.sh [--print-dir] [--check]
#   --print-dir  prints the directory the tests read (K8S_TOOLS_DIR) once everything is there
#   --check      builds nothing: exit 1, naming what is missing, unless everything is there
set -euo pipefail

HELM3_VERSION=v3.22.0
HELM4_VERSION=v4.3.1
KWOK_VERSION=v0.8.0
KUBECONFORM_VERSION=v0.8.0
ETCD_VERSION=v3.7.3
KUBERNETES_VERSION=v1.37.2
PROMETHEUS_OPERATOR_VERSION=v0.85.0
KEDA_VERSION=v2.21.0
GATEWAY_API_VERSION=v1.6.3
K8S_SCHEMAS_VERSION=1.37.0

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${K8S_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/qbo-webhooks/k8s-tools}
bin=$dir/bin
mkdir -p "$bin"
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local CGO_ENABLED=0

say() { echo "k8s-tools: $*" >&2; }
# have <file>: already made by an earlier run (each file's name carries its version).
have() { [ -s "$1" ]; }
# timed <what> <command...>
timed() {
  local what=$1 begun=$SECONDS
  shift
  say "$what ..."
  "$@"
  say "$what: done in $((SECONDS - begun)) s"
}

go_install() { # <name> <package@version> <file>
  local work
  work=$(mktemp -d)
  GOBIN=$work go install -trimpath -ldflags "-s -w" "$2"
  mv "$work/$1" "$3"
  rm -rf "$work"
}

# A module's files from the proxy's zip, unpacked into Go's module cache: prints its directory.
module_dir() { go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }

build_helm() { # <major> <version>
  local file=$bin/helm$1-$2
  have "$file" && return
  timed "helm $2 (about 7 minutes of CPU)" go_install helm "helm.sh/helm/v$1/cmd/helm@$2" "$file"
}

build_kubeconform() {
  local file=$bin/kubeconform-$KUBECONFORM_VERSION
  have "$file" && return
  timed "kubeconform $KUBECONFORM_VERSION" go_install kubeconform \
    "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" "$file"
}

# etcd and Kubernetes refuse `go install` (their go.mod has replace directives): a throwaway module
# that requires them builds them.
build_etcd() {
  local file=$bin/etcd-$ETCD_VERSION work
  have "$file" && return
  work=$(mktemp -d)
  (
    cd "$work"
    go mod init qbo-webhooks/etcd-build >/dev/null 2>&1
    printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >tools.go
    go mod edit -require "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    go mod tidy >/dev/null 2>&1
    timed "etcd $ETCD_VERSION (about 2.5 minutes of CPU)" \
      go build -trimpath -ldflags "-s -w" -o "$file" go.etcd.io/etcd/server/v3
  )
  rm -rf "$work"
}

build_kubernetes() {
  local names=(kube-apiserver kubectl kube-scheduler kube-controller-manager) missing=() work staging
  for name in "${names[@]}"; do have "$bin/$name-$KUBERNETES_VERSION" || missing+=("$name"); done
  [ ${#missing[@]} -eq 0 ] && return
  work=$(mktemp -d)
  (
    cd "$work"
    go mod init qbo-webhooks/kubernetes-build >/dev/null 2>&1
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      for name in "${names[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$name"; done
      printf ')\n'
    } >tools.go
    go mod edit -require "k8s.io/kubernetes@$KUBERNETES_VERSION"
    # Every ./staging module k8s.io/kubernetes replaces, taken from the proxy at the matching v0 version.
    staging=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    grep -oE '^\s*k8s\.io/[a-z0-9-]+ => \./staging' "$staging" | awk '{print $1}' | while read -r module; do
      go mod edit -replace "$module=$module@v0.${KUBERNETES_VERSION#v1.}"
    done
    timed "resolving Kubernetes $KUBERNETES_VERSION's modules" go mod tidy
    local stamp="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      stamp+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)"
      stamp+=" -X $pkg.gitTreeState=clean"
    done
    for name in "${missing[@]}"; do
      timed "$name $KUBERNETES_VERSION (the API server: about 18 minutes of CPU and 2.4 GB; then kubectl 1.5, the scheduler 0.5, the controller manager 6)" \
        go build -trimpath -ldflags "$stamp" -o "$bin/$name-$KUBERNETES_VERSION" "k8s.io/kubernetes/cmd/$name"
    done
  )
  rm -rf "$work"
}

# kwok turns pods Running on a simulated node; it does nothing without its stage files (node
# initialisation and heartbeat, the pod lifecycle), which come from its module. The "fast" pod stages act
# at once; the "general" ones wait 1-6 s at each step, which made a rolling upgrade of four services a minute.
build_kwok() {
  local file=$bin/kwok-$KWOK_VERSION stages=$dir/kwok-stages-fast-$KWOK_VERSION src
  have "$file" || timed "kwok $KWOK_VERSION (about 5 minutes of CPU)" go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "$file"
  [ -s "$stages/stages.yaml" ] && return
  src=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
  mkdir -p "$stages"
  {
    for stage in "$src"/kustomize/stage/node/fast/node-initialize.yaml \
      "$src"/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
      "$src"/kustomize/stage/pod/fast/pod-*.yaml; do
      printf -- '---\n'
      cat "$stage"
    done
  } >"$stages/stages.yaml.tmp"
  mv "$stages/stages.yaml.tmp" "$stages/stages.yaml"
}

# The CRDs the chart renders (ServiceMonitor, PrometheusRule, AlertmanagerConfig, ScaledObject, HTTPRoute), from
# the upstream modules. The name's last part counts changes to the set of CRDs taken (a new set, a new directory).
crds=crds-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION-keda-$KEDA_VERSION-gateway-api-$GATEWAY_API_VERSION-set2
upstream_crds() {
  local out=$dir/$crds src
  [ -d "$out" ] && return
  mkdir -p "$out.tmp"
  src=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  cp "$src"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,podmonitors,prometheusrules,alertmanagerconfigs}.yaml "$out.tmp/"
  src=$(module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")
  cp "$src"/config/crd/bases/keda.sh_{scaledobjects,triggerauthentications}.yaml "$out.tmp/"
  src=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION")
  cp "$src"/config/crd/standard/gateway.networking.k8s.io_{gateways,gatewayclasses,httproutes}.yaml "$out.tmp/"
  chmod -R u+w "$out.tmp"
  mv "$out.tmp" "$out"
}

# kubeconform offline: core schemas from PyPI's kubernetes-validate with their $refs inlined (kubeconform
# reports a schema that refers elsewhere as missing), and the CRDs' schemas made by kubeconform's own script.
kubeconform_schemas() {
  local out=$dir/schemas-k8s-$K8S_SCHEMAS_VERSION-$crds venv src
  [ -d "$out" ] && return
  venv=$dir/venv-kubernetes-validate-$K8S_SCHEMAS_VERSION
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv.tmp"
    "$venv.tmp/bin/pip" install --quiet "kubernetes-validate==$K8S_SCHEMAS_VERSION" pyyaml
    mv "$venv.tmp" "$venv"
  fi
  mkdir -p "$out.tmp"
  "$venv/bin/python" "$root/scripts/k8s/inline-schemas.py" "${K8S_SCHEMAS_VERSION%.*}" "$out.tmp"
  src=$(module_dir "github.com/yannh/kubeconform@$KUBECONFORM_VERSION")
  (cd "$out.tmp" && FILENAME_FORMAT='{kind}_{version}' "$venv/bin/python" "$src/scripts/openapi2jsonschema.py" \
    "$dir/$crds"/*.yaml >/dev/null)
  mv "$out.tmp" "$out"
}

print_dir=false check=false
for arg in "$@"; do
  case $arg in
    --print-dir) print_dir=true ;;
    --check) check=true ;;
    *) echo "usage: scripts/ensure-k8s-tools.sh [--print-dir] [--check]" >&2; exit 2 ;;
  esac
done
if $check; then
  missing=()
  for name in kubeconform helm3 helm4 etcd kube-apiserver kubectl kube-scheduler kube-controller-manager kwok; do
    [ -x "$bin/$name" ] || missing+=("$name")
  done
  [ -d "$dir/schemas-k8s-$K8S_SCHEMAS_VERSION-$crds" ] || missing+=("kubeconform schemas")
  [ -d "$dir/$crds" ] || missing+=("CRDs")
  [ -s "$dir/kwok-stages-fast-$KWOK_VERSION/stages.yaml" ] || missing+=("kwok stages")
  [ -f "$dir/current" ] || missing+=("the list of current directories")
  if [ ${#missing[@]} -gt 0 ]; then
    say "missing in $dir: ${missing[*]} (scripts/ensure-k8s-tools.sh builds them)"
    exit 1
  fi
  $print_dir && echo "$dir"
  exit 0
fi

started=$SECONDS
build_kubeconform
upstream_crds
kubeconform_schemas
build_helm 3 "$HELM3_VERSION"
build_etcd
build_kubernetes
build_kwok
build_helm 4 "$HELM4_VERSION"
# The tests find each tool under its plain name.
for file in "$bin"/*-v*; do
  name=$(basename "$file")
  case $name in
    helm3-*) link=helm3 ;; helm4-*) link=helm4 ;; *) link=${name%%-v*} ;;
  esac
  ln -sf "$name" "$bin/$link"
done
# What the tests read: this version's schema and CRD directories.
printf 'schemas=%s\ncrds=%s\nkwok_stages=%s\n' "$dir/schemas-k8s-$K8S_SCHEMAS_VERSION-$crds" "$dir/$crds" \
  "$dir/kwok-stages-fast-$KWOK_VERSION/stages.yaml" >"$dir/current"
if [ $((SECONDS - started)) -gt 1 ]; then say "ready in $((SECONDS - started)) s ($dir)"; fi
if $print_dir; then echo "$dir"; fi
