// Package replicatest runs real `rolekeeper serve` processes for tests and
// tools that need the daemon as operators run it: built once, started on
// 127.0.0.1:0 with a config file of its own, driven over HTTP, killed with
// SIGKILL. The replica test lives here; tools/loadgen uses the same
// helpers to benchmark the binary.
package replicatest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/reloadly/rolekeeper"
)

// MainPackage is the import path `go build` is given.
const MainPackage = "github.com/reloadly/rolekeeper/cmd/rolekeeper"

// Build compiles the daemon into dir and returns the binary's path. It runs
// the go command in the working directory, which must be inside the module,
// with the caller's environment, so that the build cache `go run
// ./cmd/rolekeeper` filled is reused (a cold build compiles SQLite: a
// minute or more on two cores).
func Build(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "rolekeeper")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, MainPackage)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", MainPackage, err, b)
	}
	return out, nil
}

// Options describe one daemon to start.
type Options struct {
	Binary string // from Build
	Dir    string // its own directory: config, roles.yaml, data, log
	Name   string // for messages and the log file (default "rolekeeper")

	Store string // "sqlite" (default) or "postgres"
	DSN   string // postgres: the DSN (with search_path); sqlite: ignored

	BitbucketURL  string // the fake's URL, with /2.0
	WebhookSecret string
	// Extra is YAML appended to the generated config (inbox, schedule …
	// sections; keys must not repeat the generated ones: listen,
	// public_url, roles, store, bitbucket, log).
	Extra    string
	LogLevel string   // default info
	Env      []string // more environment, KEY=VALUE
	// RolesYAML replaces the repository's roles.yaml (built into this
	// package) when set.
	RolesYAML []byte
}

// Process is a running daemon.
type Process struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	logPath string

	done    chan struct{} // closed when the process has exited
	waitErr error
	killed  atomic.Bool

	mu    sync.Mutex
	lines []string // log lines kept for Logs (all of them: replicas log little)
	keep  bool
}

// Start writes the config and starts `rolekeeper serve`, waiting until it
// logs that it listens (at most 30 s).
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Name == "" {
		o.Name = "rolekeeper"
	}
	if o.Store == "" {
		o.Store = "sqlite"
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	roles := o.RolesYAML
	if roles == nil {
		roles = rolekeeper.RolesYAML
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "roles.yaml"), roles, 0o644); err != nil {
		return nil, err
	}
	dsn := filepath.Join(o.Dir, "data", "rolekeeper.db")
	if o.Store == "postgres" {
		dsn = o.DSN
	}
	var cfg strings.Builder
	// The daemon logs the address it listens on at info level; above it
	// a free port is picked here (another process could take it first:
	// unlikely on loopback, and Start then fails).
	listen := "127.0.0.1:0"
	quiet := o.LogLevel != "info" && o.LogLevel != "debug"
	if quiet {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		listen = ln.Addr().String()
		ln.Close()
	}
	fmt.Fprintf(&cfg, "listen: %s\npublic_url: http://127.0.0.1:8080\nroles: roles.yaml\n", listen)
	fmt.Fprintf(&cfg, "store:\n  driver: %s\n  dsn: %q\n", o.Store, dsn)
	fmt.Fprintf(&cfg, "bitbucket:\n  base_url: %q\n  workspace: reloadly\n", o.BitbucketURL)
	fmt.Fprintf(&cfg, "log:\n  level: %s\n  format: json\n", o.LogLevel)
	cfg.WriteString(o.Extra)
	cfgPath := filepath.Join(o.Dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	if o.Store == "sqlite" {
		if err := os.MkdirAll(filepath.Join(o.Dir, "data"), 0o755); err != nil {
			return nil, err
		}
	}

	logPath := filepath.Join(o.Dir, o.Name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Binary, "serve", "--config", cfgPath)
	cmd.Dir = o.Dir
	// Only what the daemon needs: the caller's ROLEKEEPER_* must not leak in.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + o.Dir,
		"ROLEKEEPER_BITBUCKET_USERNAME=loadgen@example.com",
		"ROLEKEEPER_BITBUCKET_TOKEN=fake-token",
		"ROLEKEEPER_BITBUCKET_WEBHOOK_SECRET=" + o.WebhookSecret,
		"ROLEKEEPER_API_TOKEN=fake-api-token",
	}
	cmd.Env = append(cmd.Env, o.Env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	cmd.Stdout = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", o.Name, err)
	}
	p := &Process{name: o.Name, cmd: cmd, logPath: logPath, done: make(chan struct{}), keep: true}
	started := make(chan string, 1)
	go p.readLog(stderr, logFile, started)
	if quiet {
		go waitHealthy(ctx, listen, p.done, started)
	}

	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case addr := <-started:
		p.addr = addr
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before listening (%v); log:\n%s", o.Name, p.waitErr, p.tail(30))
	case <-timer.C:
	case <-ctx.Done():
	}
	_ = p.Kill()
	return nil, fmt.Errorf("%s did not start in time; log:\n%s", o.Name, p.tail(30))
}

// waitHealthy sends addr once GET /healthz answers 200 there.
func waitHealthy(ctx context.Context, addr string, done <-chan struct{}, started chan<- string) {
	c := &http.Client{Timeout: time.Second}
	for {
		resp, err := c.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				started <- addr
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readLog copies the daemon's stderr into its log file and memory, and
// reports the address of the "rolekeeper started" line.
func (p *Process) readLog(r io.Reader, file *os.File, started chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		_, _ = file.WriteString(line + "\n")
		p.mu.Lock()
		if p.keep {
			p.lines = append(p.lines, line)
		}
		p.mu.Unlock()
		if !sent && strings.Contains(line, `"rolekeeper started"`) {
			var v struct {
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &v) == nil && v.Addr != "" {
				started <- v.Addr
				sent = true
			}
		}
	}
	_, _ = io.Copy(file, r)
	p.waitErr = p.cmd.Wait()
	file.Close()
	close(p.done)
}

// KeepLogs says whether log lines are kept in memory for Logs (default
// true). A load test turns it off: every delivery logs a line.
func (p *Process) KeepLogs(keep bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keep = keep
	if !keep {
		p.lines = nil
	}
}

// Name is the name given in Options.
func (p *Process) Name() string { return p.name }

// Addr is the host:port the daemon listens on.
func (p *Process) Addr() string { return p.addr }

// URL is http://Addr.
func (p *Process) URL() string { return "http://" + p.addr }

// PID is the process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// LogPath is the file holding everything the daemon logged.
func (p *Process) LogPath() string { return p.logPath }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Logs returns the log lines kept so far that contain substr ("" for all).
func (p *Process) Logs(substr string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.lines {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func (p *Process) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() error {
	p.killed.Store(true)
	if p.Exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-p.done
	return nil
}

// Killed reports whether Kill was called.
func (p *Process) Killed() bool { return p.killed.Load() }

// Stop sends SIGTERM and waits up to timeout for a graceful exit (then
// kills). It returns the exit error of a process that did not exit 0, or
// nil for one that was killed.
func (p *Process) Stop(timeout time.Duration) error {
	if p.Exited() {
		if p.Killed() {
			return nil
		}
		return p.waitErr
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		_ = p.Kill()
		return fmt.Errorf("%s did not stop within %s: killed", p.name, timeout)
	}
}

// PeakRSS is the process's peak resident set size (VmHWM) in bytes; it
// must be read while the process runs.
func (p *Process) PeakRSS() (int64, error) { return PeakRSS(p.PID()) }

// PeakRSS reads VmHWM of pid from /proc.
func PeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmHWM:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest)) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmHWM line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmHWM: %w", err)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmHWM in /proc status")
}
