#!/usr/bin/env bash
# Checks the Helm chart: lint --strict and template for the supported setups,
# refusals for the unsupported ones, the chart's copy of roles.yaml, and the
# rendered rolekeeper.yaml against rolekeeper's own config loader.
# Exits non-zero on the first failure. Run from anywhere: scripts/helm-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$(go env GOPATH)/bin:$PATH"
if ! command -v helm >/dev/null 2>&1; then
  echo "helm-check: installing helm v3.22.0 with go install" >&2
  go install helm.sh/helm/v3/cmd/helm@v3.22.0
fi

chart=helm/rolekeeper
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() { echo "helm-check: FAIL: $*" >&2; exit 1; }
pass() { echo "helm-check: ok: $*"; }

# The chart cannot read outside itself, so it carries a copy of roles.yaml.
cmp -s roles.yaml "$chart/files/roles.yaml" ||
  fail "$chart/files/roles.yaml differs from roles.yaml: cp roles.yaml $chart/files/roles.yaml"
pass "chart's files/roles.yaml equals roles.yaml"

# The rolekeeper binary, to load the rendered configuration as the pod will.
go build -o "$tmp/rolekeeper" ./cmd/rolekeeper

# block KEY: prints the block scalar data.KEY of a rendered ConfigMap (stdin).
block() {
  awk -v key="$1" '
    $0 == "  " key ": |" { on = 1; next }
    on && /^    / { print substr($0, 5); next }
    on && /^ *$/ { print ""; next }
    on { on = 0 }'
}

# Setups that must lint and render. Each: name, then helm --set arguments.
setups=(
  "defaults|"
  "sqlite-no-persistence|persistence.enabled=false"
  "postgres-3-replicas|store.driver=postgres,store.postgres.existingSecret=rolekeeper-db,replicaCount=3"
  "ingress-servicemonitor|ingress.enabled=true,ingress.className=nginx,ingress.tls[0].secretName=rolekeeper-tls,ingress.tls[0].hosts[0]=rolekeeper.example.com,metrics.serviceMonitor.enabled=true"
  "secrets-created|secrets.create=true,secrets.bitbucket.username=bot@example.com,secrets.bitbucket.token=t,secrets.bitbucket.webhookSecret=w,secrets.apiToken=a,config.jira.base_url=https://example.atlassian.net,config.dry_run=false"
  "existing-secret|secrets.existingSecret=rolekeeper-env,config.public_url=https://rolekeeper.example.com"
)

for s in "${setups[@]}"; do
  name="${s%%|*}"
  set_args=()
  [ -n "${s#*|}" ] && set_args=(--set "${s#*|}")
  helm lint --strict "$chart" "${set_args[@]}" >"$tmp/lint.txt" 2>&1 ||
    { cat "$tmp/lint.txt" >&2; fail "$name: helm lint --strict"; }
  out="$tmp/$name.yaml"
  helm template rk "$chart" --namespace ops "${set_args[@]}" >"$out" 2>"$tmp/err.txt" ||
    { cat "$tmp/err.txt" >&2; fail "$name: helm template"; }

  # The rendered rolekeeper.yaml and roles.yaml must load in rolekeeper.
  mkdir -p "$tmp/$name"
  helm template rk "$chart" --namespace ops "${set_args[@]}" --show-only templates/configmap.yaml >"$tmp/cm.yaml"
  block rolekeeper.yaml <"$tmp/cm.yaml" >"$tmp/$name/rolekeeper.yaml"
  block roles.yaml <"$tmp/cm.yaml" >"$tmp/$name/roles.yaml"
  "$tmp/rolekeeper" validate --config "$tmp/$name/rolekeeper.yaml" >"$tmp/validate.txt" 2>&1 ||
    { cat "$tmp/$name/rolekeeper.yaml" "$tmp/validate.txt" >&2; fail "$name: rendered config does not load"; }
  diff -u roles.yaml "$tmp/$name/roles.yaml" >&2 ||
    fail "$name: the ConfigMap's roles.yaml is not the shipped one"
  pass "$name: lint --strict, template, rendered config loads"
done

# What each setup must contain.
has() { grep -qE "$2" "$tmp/$1.yaml" || fail "$1: no line matching /$2/"; }
hasnt() { ! grep -qE "$2" "$tmp/$1.yaml" || fail "$1: unexpected line matching /$2/"; }

has defaults '^kind: PersistentVolumeClaim$'
has defaults '^    type: Recreate$'
has defaults '^  replicas: 1$'
has defaults 'checksum/config: [0-9a-f]{64}'
has defaults 'readOnlyRootFilesystem: true'
has defaults 'runAsUser: 65532'
has defaults 'path: /healthz'
has defaults 'path: /readyz'
hasnt defaults 'kind: PodDisruptionBudget'
hasnt defaults 'ROLEKEEPER_STORE_DSN'
hasnt sqlite-no-persistence 'kind: PersistentVolumeClaim'
has postgres-3-replicas '^  replicas: 3$'
has postgres-3-replicas '^    type: RollingUpdate$'
has postgres-3-replicas '^kind: PodDisruptionBudget$'
has postgres-3-replicas 'name: ROLEKEEPER_STORE_DSN'
hasnt postgres-3-replicas 'kind: PersistentVolumeClaim'
has ingress-servicemonitor '^kind: Ingress$'
has ingress-servicemonitor '^kind: ServiceMonitor$'
has ingress-servicemonitor 'public_url: "https://rolekeeper.example.com"'
has secrets-created '^kind: Secret$'
has secrets-created 'checksum/secret: '
has existing-secret 'name: rolekeeper-env'
for v in ROLEKEEPER_BITBUCKET_USERNAME ROLEKEEPER_BITBUCKET_TOKEN ROLEKEEPER_BITBUCKET_ACCESS_TOKEN \
  ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET ROLEKEEPER_JIRA_EMAIL ROLEKEEPER_JIRA_TOKEN \
  ROLEKEEPER_JIRA_WEBHOOK_SECRET ROLEKEEPER_API_TOKEN; do
  has existing-secret "name: $v\$"
done
pass "rendered objects"

# Setups that must be refused, with the words that say why. The schema
# refuses them (so lint fails too: in lint mode helm only logs a template's
# fail); the templates' own checks back it up under --skip-schema-validation.
refusals=(
  "sqlite-2-replicas|replicaCount=2|/replicaCount': maximum: got 2, want 1"
  "postgres-without-secret|store.driver=postgres|/store/postgres/existingSecret"
  "unknown-driver|store.driver=mysql|/store/driver': value must be one of"
  "unknown-config-key|config.colour=blue|colour"
  "two-secret-sources|secrets.existingSecret=x,secrets.create=true|/secrets/existingSecret"
)
for r in "${refusals[@]}"; do
  IFS='|' read -r name set_arg want <<<"$r"
  if helm template rk "$chart" --set "$set_arg" >/dev/null 2>"$tmp/err.txt"; then
    fail "$name: helm template accepted --set $set_arg"
  fi
  grep -q -- "$want" "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "$name: error does not say \"$want\""; }
  if helm lint --strict "$chart" --set "$set_arg" >"$tmp/lint.txt" 2>&1; then
    fail "$name: helm lint accepted --set $set_arg"
  fi
  pass "$name: refused"
done

# The templates' own refusal, without the schema.
if helm template rk "$chart" --skip-schema-validation --set replicaCount=2 >/dev/null 2>"$tmp/err.txt"; then
  fail "sqlite-2-replicas: the template accepted it without the schema"
fi
grep -q "SQLite has one writer" "$tmp/err.txt" || { cat "$tmp/err.txt" >&2; fail "sqlite-2-replicas: template error does not explain"; }
pass "sqlite-2-replicas: refused by the template too"

echo "helm-check: all checks passed"
