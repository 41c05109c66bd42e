package app

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/reloadly/rolekeeper/internal/roles"
)

// embeddedRolesName names the built-in roles file in problems and in
// /readyz.
const embeddedRolesName = "roles.yaml (built in)"

// reloader keeps the roles in force and replaces them when roles.yaml
// changes: a file that does not load is refused, its problems logged, and
// the rules in force stay.
type reloader struct {
	path     string // "" when the roles are built in
	interval time.Duration
	current  *roles.Current
	log      *zap.Logger
	now      func() time.Time
	// onReload runs after a new roles file is in force (schedules re-sync).
	onReload func()

	success  prometheus.Gauge
	total    *prometheus.CounterVec
	hashInfo *prometheus.GaugeVec
	lastOK   prometheus.Gauge

	mu       sync.Mutex
	ok       bool      // the last attempt succeeded
	modTime  time.Time // of the file last looked at
	size     int64
	seenHash string // hash of the file content last tried, loaded or not
}

func newReloader(path string, embedded []byte, reg prometheus.Registerer, log *zap.Logger, now func() time.Time) (*reloader, error) {
	r := &reloader{
		path: path,
		log:  log.Named("roles"),
		now:  now,
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rolekeeper_roles_reload_success",
			Help: "Whether the last load of roles.yaml succeeded (1) or was refused (0).",
		}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rolekeeper_roles_reload_total",
			Help: "Loads of roles.yaml, by result (success, failure).",
		}, []string{"result"}),
		hashInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rolekeeper_roles_hash_info",
			Help: "SHA-256 of the roles.yaml in force (always 1).",
		}, []string{"hash"}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rolekeeper_roles_last_reload_timestamp_seconds",
			Help: "Unix time of the last successful load of roles.yaml.",
		}),
	}
	for _, c := range []prometheus.Collector{r.success, r.total, r.hashInfo, r.lastOK} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}

	var (
		org *roles.Org
		err error
	)
	if path == "" {
		if len(embedded) == 0 {
			return nil, errors.New("no roles file configured and none built in")
		}
		org, err = roles.ParseAt(embeddedRolesName, embedded, now())
	} else {
		var data []byte
		var st os.FileInfo
		data, st, err = readFile(path)
		if err == nil {
			r.modTime, r.size, r.seenHash = st.ModTime(), st.Size(), hashOf(data)
			org, err = roles.ParseAt(path, data, now())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("roles: %w", err) // *roles.Errors keeps every problem
	}
	r.current = roles.NewCurrent(org)
	r.record(nil, "", org)
	return r, nil
}

// status is /readyz's roles line.
func (r *reloader) status() (bool, string) {
	org := r.current.Get()
	if org == nil {
		return false, "not loaded"
	}
	r.mu.Lock()
	ok := r.ok
	r.mu.Unlock()
	detail := fmt.Sprintf("%s sha256:%.12s, %d roles, %d teams, %d people, %d rules",
		org.Path, org.Hash, len(org.Roles), len(org.Teams), len(org.People), len(org.Rules))
	if !ok {
		detail += "; the last reload was refused, these rules stay in force"
	}
	return true, detail
}

// loop checks the file every interval until stop is closed.
func (r *reloader) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	if r.path == "" || r.interval < 0 {
		<-stop
		return
	}
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			_ = r.reload(false) // logged inside
		}
	}
}

// reload loads the file when it changed (or always, when force) and puts
// it in force when it loads. A changed file is tried once: a bad file is
// not reported again every interval, only once it changes again.
func (r *reloader) reload(force bool) error {
	if r.path == "" {
		return nil // built-in roles never change
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := os.Stat(r.path)
	if err != nil {
		if !force && r.modTime.IsZero() && r.size < 0 {
			return err // already reported
		}
		r.modTime, r.size = time.Time{}, -1
		r.record(err, "", nil)
		return err
	}
	if !force && st.ModTime().Equal(r.modTime) && st.Size() == r.size {
		return nil
	}
	data, st, err := readFile(r.path)
	if err != nil {
		r.record(err, "", nil)
		return err
	}
	r.modTime, r.size = st.ModTime(), st.Size()
	hash := hashOf(data)
	if !force && hash == r.seenHash {
		return nil // touched, not changed
	}
	r.seenHash = hash
	org, err := roles.ParseAt(r.path, data, r.now())
	if err != nil {
		r.record(err, hash, nil)
		return err
	}
	old := r.current.Get()
	r.current.Set(org)
	if r.onReload != nil {
		r.onReload()
	}
	r.record(nil, old.Hash, org)
	return nil
}

// record counts and logs one load. Called with mu held (or before any
// concurrency, from newReloader).
func (r *reloader) record(err error, oldHash string, org *roles.Org) {
	if err != nil {
		r.ok = false
		r.success.Set(0)
		r.total.WithLabelValues("failure").Inc()
		fields := []zap.Field{zap.String("file", r.path), zap.String("roles_hash_in_force", r.current.Get().Hash)}
		var perr *roles.Errors
		if errors.As(err, &perr) {
			fields = append(fields, zap.Strings("problems", problemLines(perr.Problems)))
		} else {
			fields = append(fields, zap.Error(err))
		}
		r.log.Error("roles.yaml refused: the rules in force stay", fields...)
		return
	}
	r.ok = true
	r.success.Set(1)
	r.total.WithLabelValues("success").Inc()
	if oldHash != "" && oldHash != org.Hash {
		r.hashInfo.DeleteLabelValues(oldHash)
	}
	r.hashInfo.WithLabelValues(org.Hash).Set(1)
	r.lastOK.Set(float64(r.now().UnixNano()) / 1e9)
	r.log.Info("roles loaded",
		zap.String("file", org.Path),
		zap.String("roles_hash", org.Hash),
		zap.Int("roles", len(org.Roles)),
		zap.Int("teams", len(org.Teams)),
		zap.Int("people", len(org.People)),
		zap.Int("rules", len(org.Rules)),
	)
	for _, w := range org.Warnings {
		r.log.Warn("roles.yaml: " + w.String())
	}
}

func problemLines(ps []roles.Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func readFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read roles: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("read roles: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, roles.MaxFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read roles: %w", err)
	}
	return data, st, nil
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
