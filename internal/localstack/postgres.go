package localstack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresOptions configures a local PostgreSQL server.
type PostgresOptions struct {
	// DataDir holds the cluster. It is initialised on first use and reused afterwards.
	DataDir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Log receives the server's output; nil discards it.
	Log io.Writer
}

// Postgres is a running local PostgreSQL server. Its superuser is "postgres", with trust
// authentication on loopback only.
type Postgres struct {
	dataDir string
	port    int
	proc    *child
}

const (
	pgSuperuser   = "postgres"
	pgInstallHint = "install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql; Fedora: dnf install postgresql-server)"
)

// StartPostgres starts PostgreSQL on DataDir (running initdb first if the directory is new) and
// returns once it accepts connections. When Lethe runs as root, the server runs as the
// unprivileged "postgres" user, because PostgreSQL refuses to run as root.
func StartPostgres(ctx context.Context, o PostgresOptions) (*Postgres, error) {
	if o.DataDir == "" {
		return nil, errors.New("starting PostgreSQL: no data directory given")
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := postgresCredential()
	if err != nil {
		return nil, err
	}
	if err := preparePostgresDir(dir, cred); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, fs.ErrNotExist) {
		if err := initdb(bin, dir, cred, o.Log); err != nil {
			return nil, err
		}
	}
	if err := clearStalePid(dir); err != nil {
		return nil, err
	}
	port, err := portOrFree(o.Port)
	if err != nil {
		return nil, err
	}
	if err := checkPortFree(port, "PostgreSQL"); err != nil {
		return nil, err
	}

	// A Unix socket path is limited to 107 bytes; past that, TCP on loopback is enough.
	socketDir := dir
	if len(dir)+len("/.s.PGSQL.65535.lock") > 107 {
		socketDir = ""
	}
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories="+socketDir,
		"-c", "log_min_messages=warning",
		// Every Lethe process holds a pool (database.max_conns, 10 by default): a stack with
		// several workers, bridges and runners, as lethe bench runs, needs more than the default 100.
		"-c", "max_connections=400")
	cmd.Dir = dir
	proc, err := startChild("PostgreSQL", cmd, childOptions{stopSig: syscall.SIGINT, stopWait: time.Minute, cred: cred, log: o.Log})
	if err != nil {
		return nil, err
	}
	p := &Postgres{dataDir: dir, port: port, proc: proc}
	err = proc.waitReady(ctx, time.Minute, func() error {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		conn, err := pgx.Connect(cctx, p.URL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(cctx)
	})
	if err != nil {
		_ = proc.stop()
		return nil, fmt.Errorf("starting PostgreSQL on %s: %w", dir, err)
	}
	return p, nil
}

// URL is the connection URL of database as the superuser.
func (p *Postgres) URL(database string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", pgSuperuser, p.port, url.PathEscape(database))
}

// Port is the TCP port the server listens on (127.0.0.1).
func (p *Postgres) Port() int { return p.port }

// EnsureDatabase creates the database if it does not exist yet.
func (p *Postgres) EnsureDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to local PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("looking up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created concurrently
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating database %s: %w", name, err)
	}
	return nil
}

// Done is closed when the server process has exited, after Stop or on its own.
func (p *Postgres) Done() <-chan struct{} { return p.proc.done }

// Stop shuts the server down (fast shutdown: sessions are ended, data is flushed) and waits.
func (p *Postgres) Stop() error { return p.proc.stop() }

// postgresBinDir finds the directory holding both initdb and postgres: PATH first, then the
// distributions' versioned directories (newest version first), which are not on PATH by default.
func postgresBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	var candidates []string
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/usr/local/pgsql/bin"} {
		m, _ := filepath.Glob(pattern)
		candidates = append(candidates, m...)
	}
	sort.SliceStable(candidates, func(i, j int) bool { return pgVersionOf(candidates[i]) > pgVersionOf(candidates[j]) })
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
				return dir, nil
			}
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin: " + pgInstallHint)
}

// pgVersionOf extracts the major version from paths like /usr/lib/postgresql/15/bin.
func pgVersionOf(dir string) int {
	for _, part := range strings.Split(dir, "/") {
		part = strings.TrimPrefix(part, "pgsql-")
		if n, err := strconv.Atoi(part); err == nil {
			return n
		}
	}
	return 0
}

// postgresCredential is nil unless we are root, in which case the server runs as "postgres".
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(pgSuperuser)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root, and there is no %q user to run it as: "+
			"create one (useradd --system --user-group --home-dir /var/lib/postgresql postgres; installing the "+
			"Debian postgresql package does this) or run Lethe as an ordinary user", pgSuperuser)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				cred.Groups = append(cred.Groups, uint32(n))
			}
		}
	}
	return cred, nil
}

// preparePostgresDir creates the data directory with the permissions PostgreSQL insists on,
// owned by the user the server runs as.
func preparePostgresDir(dir string, cred *syscall.Credential) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating PostgreSQL data directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("setting permissions of %s: %w", dir, err)
	}
	if cred == nil {
		return nil
	}
	if err := checkSearchable(dir, cred); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid == cred.Uid {
		return nil
	}
	err = filepath.WalkDir(dir, func(path string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, int(cred.Uid), int(cred.Gid))
	})
	if err != nil {
		return fmt.Errorf("giving %s to the %s user: %w", dir, pgSuperuser, err)
	}
	return nil
}

// checkSearchable makes sure the server's user can reach dir, so the failure is a clear message
// instead of a permission error from deep inside initdb.
func checkSearchable(dir string, cred *syscall.Credential) error {
	inGroup := func(gid uint32) bool {
		if gid == cred.Gid {
			return true
		}
		for _, g := range cred.Groups {
			if g == gid {
				return true
			}
		}
		return false
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("checking %s: %w", d, err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		var ok bool
		switch {
		case st.Uid == cred.Uid:
			ok = perm&0o100 != 0
		case inGroup(st.Gid):
			ok = perm&0o010 != 0
		default:
			ok = perm&0o001 != 0
		}
		if !ok {
			return fmt.Errorf("PostgreSQL runs as the %s user, which cannot reach %s because %s is not searchable by it: "+
				"use a data directory elsewhere, or allow it with: chmod o+x %s", pgSuperuser, dir, d, d)
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

func initdb(bin, dir string, cred *syscall.Credential, log io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("reading %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is neither empty nor a PostgreSQL data directory: remove it, or choose another directory", dir)
	}
	cmd := exec.Command(filepath.Join(bin, "initdb"), "-D", dir, "-U", pgSuperuser,
		"-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.Dir = dir
	proc, err := startChild("initdb", cmd, childOptions{cred: cred, log: log})
	if err != nil {
		return err
	}
	select {
	case <-proc.done:
	case <-time.After(5 * time.Minute):
		_ = proc.stop()
		return fmt.Errorf("initdb on %s did not finish within 5 minutes; its last output:\n%s", dir, proc.tail.String())
	}
	if proc.waitErr != nil {
		return fmt.Errorf("initialising a PostgreSQL cluster in %s: %v; initdb's last output:\n%s", dir, proc.waitErr, proc.tail.String())
	}
	// Trust is only acceptable because nothing but loopback may connect; say so explicitly
	// rather than rely on initdb's template.
	hba := "# Written by Lethe: a local development/test cluster, reachable from this machine only.\n" +
		"local all all trust\n" +
		"host  all all 127.0.0.1/32 trust\n" +
		"host  all all ::1/128 trust\n"
	if err := os.WriteFile(filepath.Join(dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fmt.Errorf("writing pg_hba.conf: %w", err)
	}
	if cred != nil {
		if err := os.Chown(filepath.Join(dir, "pg_hba.conf"), int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("writing pg_hba.conf: %w", err)
		}
	}
	return nil
}

// clearStalePid removes the lock file of a server that was killed. PostgreSQL checks the pid in
// it itself, but after a restart of the machine or container that pid may belong to an
// unrelated process, and the server would refuse to start.
func clearStalePid(dir string) error {
	file := filepath.Join(dir, "postmaster.pid")
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	if pid, err := strconv.Atoi(strings.TrimSpace(first)); err == nil && pid > 0 {
		// The postmaster's working directory is its data directory.
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil && cwd == dir {
			return fmt.Errorf("a PostgreSQL server (pid %d) is already running on %s: stop it (kill -INT %d) or use another directory", pid, dir, pid)
		}
	}
	if err := os.Remove(file); err != nil {
		return fmt.Errorf("removing the stale lock file %s: %w", file, err)
	}
	return nil
}
