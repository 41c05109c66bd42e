package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/reloadly/rolekeeper/internal/replicatest"
)

// wrkScript sends one signed body under a new delivery id per request: the
// signature covers the body only, so the header may change. The ids are
// random version-4 UUIDs, as Bitbucket's X-Request-UUID is: ids numbered in
// order fill the store's unique (source, delivery_id) index at one end,
// and random ones dirty a page of it at a random place per delivery (on
// SQLite, numbered ids measured 20 % more requests a second and half the
// p99; docs/benchmarks.md). Each thread seeds its own generator from the
// run's seed and its number.
const wrkScript = `
local f = assert(io.open(%q, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Event-Key"] = %q
wrk.headers["X-Hub-Signature"] = %q

local seed = %d
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
end

function init(args)
  math.randomseed(seed + tid * 104729)
end

local function r16() return math.random(0, 0xffff) end

function request()
  wrk.headers["X-Request-UUID"] = string.format("{%%04x%%04x-%%04x-4%%03x-%%04x-%%04x%%04x%%04x}",
    r16(), r16(), r16(), math.random(0, 0xfff), math.random(0x8000, 0xbfff), r16(), r16(), r16())
  return wrk.format()
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK requests=%%d duration_us=%%d p50_us=%%d p90_us=%%d p99_us=%%d max_us=%%d status_errors=%%d socket_errors=%%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
`

// wrkResult is what the script's done() reports.
type wrkResult struct {
	Requests     int
	Duration     time.Duration
	P50, P90     time.Duration
	P99, Max     time.Duration
	StatusErrors int // answers other than 2xx/3xx
	SocketErrors int
}

func (w wrkResult) RPS() float64 {
	if w.Duration <= 0 {
		return 0
	}
	return float64(w.Requests) / w.Duration.Seconds()
}

// runWrk runs wrk against url for dur with conns connections on threads
// threads, sending d's body and signature under fresh delivery ids.
func runWrk(ctx context.Context, dir, url string, d replicatest.Delivery, threads, conns int, dur time.Duration) (wrkResult, error) {
	bodyPath := filepath.Join(dir, "wrk-body.json")
	if err := os.WriteFile(bodyPath, d.Body, 0o644); err != nil {
		return wrkResult{}, err
	}
	runID := strings.Trim(replicatest.NewUUID(), "{}")[:8]
	script := wrkScriptFor(bodyPath, d, rand.Int64N(1<<40))
	scriptPath := filepath.Join(dir, "wrk-"+runID+".lua")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		return wrkResult{}, err
	}
	cmd := exec.CommandContext(ctx, "wrk", "-t", strconv.Itoa(threads), "-c", strconv.Itoa(conns),
		"-d", strconv.Itoa(int(dur.Seconds()))+"s", "-s", scriptPath, url)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return wrkResult{}, fmt.Errorf("wrk: %w: %s%s", err, out.String(), errb.String())
	}
	return parseWrk(out.String())
}

// wrkScriptFor is the script that sends the body at bodyPath with d's
// event key and signature, its ids drawn from seed.
func wrkScriptFor(bodyPath string, d replicatest.Delivery, seed int64) string {
	return fmt.Sprintf(wrkScript, bodyPath, d.EventKey, d.Signature, seed)
}

func parseWrk(out string) (wrkResult, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "WRK ")
		if !ok {
			continue
		}
		v := map[string]int64{}
		for _, f := range strings.Fields(line) {
			k, val, _ := strings.Cut(f, "=")
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil {
				return wrkResult{}, fmt.Errorf("wrk summary %q: %w", f, err)
			}
			v[k] = n
		}
		us := func(k string) time.Duration { return time.Duration(v[k]) * time.Microsecond }
		return wrkResult{
			Requests: int(v["requests"]), Duration: us("duration_us"),
			P50: us("p50_us"), P90: us("p90_us"), P99: us("p99_us"), Max: us("max_us"),
			StatusErrors: int(v["status_errors"]), SocketErrors: int(v["socket_errors"]),
		}, nil
	}
	return wrkResult{}, fmt.Errorf("no summary line in wrk output:\n%s", out)
}
