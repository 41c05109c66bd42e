package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	rolekeeper "github.com/reloadly/rolekeeper"
	"github.com/reloadly/rolekeeper/internal/config"
	"github.com/reloadly/rolekeeper/internal/roles"
	"github.com/reloadly/rolekeeper/internal/store/postgres"
	"github.com/reloadly/rolekeeper/internal/store/sqlite"
)

// maxProblems bounds the roles.yaml problems printed one per line.
const maxProblems = 20

// checkRoles loads roles.yaml as the daemon would and keeps the result for
// the repository and project checks.
func (d *doctor) checkRoles() {
	now := d.opts.Now()
	var (
		org  *roles.Org
		err  error
		name = d.cfg.Roles
	)
	if name == "" {
		name = "roles.yaml (built in)"
		org, err = roles.ParseAt(name, rolekeeper.RolesYAML, now)
	} else {
		org, err = roles.LoadAt(name, now)
	}
	var re *roles.Errors
	switch {
	case errors.As(err, &re):
		d.r.add(Fail, checkRoles, "%s does not load (%d %s); the daemon would refuse it. Fix each line below; `rolekeeper validate --roles %s` checks it",
			name, len(re.Problems), plural(len(re.Problems), "problem", "problems"), name)
		for i, p := range re.Problems {
			if i == maxProblems {
				d.r.add(Fail, checkRoles, "… and %d more", len(re.Problems)-maxProblems)
				break
			}
			d.r.add(Fail, checkRoles, "%s", p)
		}
		return
	case errors.Is(err, fs.ErrNotExist):
		d.r.add(Fail, checkRoles, "%s does not exist: `roles:` in the config names it, relative to the config file's directory", name)
		return
	case err != nil:
		d.r.add(Fail, checkRoles, "cannot read %s: %v", name, err)
		return
	}
	d.org = org
	d.r.add(OK, checkRoles, "%s: %d roles, %d teams, %d people, %d rules, %d repositories, %d Jira projects",
		name, len(org.Roles), len(org.Teams), len(org.People), len(org.Rules), len(org.Repositories()), len(org.Projects()))
	for _, w := range org.Warnings {
		d.r.add(Warn, checkRoles, "%s", w)
	}
}

// checkStore opens the store as the daemon would (applying migrations, as
// `serve` does at start) and pings it. A SQLite file that does not exist
// yet is not created: its directory must only be writable.
func (d *doctor) checkStore(ctx context.Context) {
	dsn := d.cfg.Store.DSN
	from := "store.dsn"
	if d.secrets.StoreDSN != "" {
		dsn, from = d.secrets.StoreDSN, config.EnvStoreDSN
	}
	switch d.cfg.Store.Driver {
	case config.DriverSQLite, "":
		d.checkSQLite(ctx, dsn, from)
	case config.DriverPostgres:
		d.checkPostgres(ctx, dsn, from)
	default:
		d.r.add(Fail, checkStore, "unknown store.driver %q: use sqlite or postgres", d.cfg.Store.Driver)
	}
}

func (d *doctor) checkSQLite(ctx context.Context, path, from string) {
	if path == ":memory:" || strings.Contains(path, "mode=memory") {
		d.r.add(Warn, checkStore, "sqlite in memory (%s): deliveries, decisions and gates are lost at every restart; give a file path", from)
		return
	}
	file := strings.TrimPrefix(path, "file:")
	if i := strings.IndexByte(file, '?'); i >= 0 {
		file = file[:i]
	}
	info, err := os.Stat(file)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		dir, err := writableDir(filepath.Dir(file))
		if err != nil {
			d.r.add(Fail, checkStore, "sqlite %s does not exist and cannot be created: %v. Give the user running rolekeeper (uid %d) write access to %s, or point %s elsewhere (in Kubernetes: the volume at /var/lib/rolekeeper)",
				file, err, os.Getuid(), dir, from)
			return
		}
		d.r.add(OK, checkStore, "sqlite %s does not exist yet; rolekeeper creates it at start (%s is writable)", file, dir)
		return
	case err != nil:
		d.r.add(Fail, checkStore, "sqlite %s: %v", file, err)
		return
	case info.IsDir():
		d.r.add(Fail, checkStore, "sqlite %s is a directory: %s must name a file, such as %s", file, from, filepath.Join(file, "rolekeeper.db"))
		return
	}
	if err := canWrite(file); err != nil {
		d.r.add(Fail, checkStore, "sqlite %s is not writable by uid %d: %v. Fix its owner or mode (and its directory's: SQLite writes -wal and -shm files beside it)", file, os.Getuid(), err)
		return
	}
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	s, err := sqlite.Open(cctx, path)
	if err != nil {
		d.r.add(Fail, checkStore, "sqlite %s does not open: %v. A corrupt file can be restored from a backup (docs/operations.md)", file, err)
		return
	}
	defer s.Close()
	if err := s.Ping(cctx); err != nil {
		d.r.add(Fail, checkStore, "sqlite %s opens but does not answer: %v", file, err)
		return
	}
	d.r.add(OK, checkStore, "sqlite %s opens, is migrated and answers", file)
}

func (d *doctor) checkPostgres(ctx context.Context, dsn, from string) {
	where := redactDSN(dsn)
	cctx, cancel := d.bounded(ctx)
	defer cancel()
	s, err := postgres.Open(cctx, dsn)
	if err != nil {
		if cctx.Err() != nil {
			err = fmt.Errorf("no answer within %s: %w", d.opts.Timeout, err)
		}
		d.r.add(Fail, checkStore, "postgres %s is not reachable or refuses the account: %v. Check %s (host, port, database, user, password, sslmode) and that this host may connect (network policy, pg_hba.conf)",
			where, err, from)
		return
	}
	defer s.Close()
	if err := s.Ping(cctx); err != nil {
		d.r.add(Fail, checkStore, "postgres %s connects but does not answer: %v", where, err)
		return
	}
	d.r.add(OK, checkStore, "postgres %s answers and is migrated (DSN from %s)", where, from)
}

// redactDSN hides the password of a postgres URL or key=value DSN.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.RawQuery = ""
		return u.Redacted()
	}
	var parts []string
	for _, f := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(f, "="); ok && strings.EqualFold(k, "password") {
			f = k + "=xxxxx"
		}
		parts = append(parts, f)
	}
	return strings.Join(parts, " ")
}

// writableDir finds the nearest existing directory at or above dir (the
// store creates the missing ones) and checks that a file can be created
// in it. It returns the directory it checked.
func writableDir(dir string) (string, error) {
	for {
		info, err := os.Stat(dir)
		if err == nil {
			if !info.IsDir() {
				return dir, fmt.Errorf("%s is not a directory", dir)
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return dir, err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return dir, err
		}
		dir = parent
	}
	f, err := os.CreateTemp(dir, ".rolekeeper-doctor-*")
	if err != nil {
		return dir, err
	}
	name := f.Name()
	f.Close()
	return dir, os.Remove(name)
}

// canWrite checks that a file and its directory can be written.
func canWrite(file string) error {
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	f.Close()
	_, err = writableDir(filepath.Dir(file))
	return err
}
