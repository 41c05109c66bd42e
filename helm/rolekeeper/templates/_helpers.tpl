{{/* Names, labels and the values the templates share. */}}

{{- define "rolekeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rolekeeper.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rolekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rolekeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rolekeeper.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rolekeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "rolekeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rolekeeper.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding the ROLEKEEPER_* variables ("" when none). */}}
{{- define "rolekeeper.secretName" -}}
{{- if .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else if .Values.secrets.create -}}
{{- include "rolekeeper.fullname" . -}}
{{- end -}}
{{- end -}}

{{/* Where the pod keeps its data: the SQLite file and rendered reports. */}}
{{- define "rolekeeper.dataDir" -}}/var/lib/rolekeeper{{- end -}}

{{/* The public base URL: config.public_url, else the first ingress host. */}}
{{- define "rolekeeper.publicURL" -}}
{{- if .Values.config.public_url -}}
{{- .Values.config.public_url | trimSuffix "/" -}}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts -}}
{{- $host := (first .Values.ingress.hosts).host -}}
{{- if .Values.ingress.tls -}}https://{{ $host }}{{- else -}}http://{{ $host }}{{- end -}}
{{- else -}}
http://{{ include "rolekeeper.fullname" . }}.{{ .Release.Namespace }}.svc:{{ .Values.service.port }}
{{- end -}}
{{- end -}}

{{/* Checks across values that the schema cannot express. */}}
{{- define "rolekeeper.validate" -}}
{{- if and (eq .Values.store.driver "sqlite") (gt (int .Values.replicaCount) 1) -}}
{{- fail (printf "replicaCount is %d but store.driver is sqlite: SQLite has one writer, so run 1 replica, or set store.driver=postgres (with store.postgres.existingSecret) to scale out" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if and (eq .Values.store.driver "postgres") (not .Values.store.postgres.existingSecret) -}}
{{- fail "store.driver is postgres: set store.postgres.existingSecret to a Secret holding the DSN (key store.postgres.key), e.g. kubectl create secret generic rolekeeper-db --from-literal=dsn='postgres://rolekeeper:…@db:5432/rolekeeper?sslmode=require'" -}}
{{- end -}}
{{- if and .Values.secrets.existingSecret .Values.secrets.create -}}
{{- fail "give either secrets.existingSecret or secrets.create, not both" -}}
{{- end -}}
{{- end -}}

{{/*
rolekeeper.yaml, from .Values.config with the keys the chart owns (listen,
roles, store, reports.dir) set to match the pod. Keys as in
config/rolekeeper.yaml; empty optional strings are left out.
*/}}
{{- define "rolekeeper.configFile" -}}
{{- $c := .Values.config -}}
listen: "0.0.0.0:{{ .Values.containerPort }}"
public_url: {{ include "rolekeeper.publicURL" . | quote }}
roles: roles.yaml
dry_run: {{ $c.dry_run }}
store:
  driver: {{ .Values.store.driver }}
{{- if eq .Values.store.driver "postgres" }}
  # Replaced at run time by $ROLEKEEPER_STORE_DSN, from Secret {{ .Values.store.postgres.existingSecret }} (key {{ .Values.store.postgres.key }}).
  dsn: "postgres://ROLEKEEPER_STORE_DSN-is-not-set.invalid/rolekeeper"
{{- else }}
  dsn: {{ include "rolekeeper.dataDir" . }}/rolekeeper.db
{{- end }}
bitbucket:
  base_url: {{ $c.bitbucket.base_url | quote }}
{{- with $c.bitbucket.workspace }}
  workspace: {{ . | quote }}
{{- end }}
  assign_drafts: {{ $c.bitbucket.assign_drafts }}
  timeout: {{ $c.bitbucket.timeout | quote }}
jira:
  base_url: {{ $c.jira.base_url | quote }}
  report_project: {{ $c.jira.report_project | quote }}
schedule:
  audit: {{ $c.schedule.audit | quote }}
  weekly_report: {{ $c.schedule.weekly_report | quote }}
  timezone: {{ $c.schedule.timezone | quote }}
reports:
  dir: {{ include "rolekeeper.dataDir" . }}/reports
webhooks:
  allow_unsigned: {{ $c.webhooks.allow_unsigned }}
  max_body_bytes: {{ int64 $c.webhooks.max_body_bytes }}
inbox:
  workers: {{ int $c.inbox.workers }}
  max_attempts: {{ int $c.inbox.max_attempts }}
  base_backoff: {{ $c.inbox.base_backoff | quote }}
  max_backoff: {{ $c.inbox.max_backoff | quote }}
  lease: {{ $c.inbox.lease | quote }}
  timeout: {{ $c.inbox.timeout | quote }}
retention:
  done_deliveries: {{ $c.retention.done_deliveries | quote }}
  dead_letters: {{ $c.retention.dead_letters | quote }}
  decisions: {{ $c.retention.decisions | quote }}
  batch: {{ int $c.retention.batch }}
gates:
  ttl: {{ $c.gates.ttl | quote }}
audit:
  bitbucket_hourly_budget: {{ int $c.audit.bitbucket_hourly_budget }}
  jira_hourly_budget: {{ int $c.audit.jira_hourly_budget }}
log:
  level: {{ $c.log.level }}
  format: {{ $c.log.format }}
{{- end -}}

{{/* roles.yaml: .Values.roles, else the one shipped with the chart. */}}
{{- define "rolekeeper.rolesFile" -}}
{{- if .Values.roles -}}
{{- .Values.roles -}}
{{- else -}}
{{- .Files.Get "files/roles.yaml" -}}
{{- end -}}
{{- end -}}
