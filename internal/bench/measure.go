package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times; 100 on every Linux Lethe runs on.
const clockTicks = 100

// cpu is the CPU time each process of the run used so far: the lethe processes, the Temporal
// server, and this process (the load generator and the floor's worker).
func (st *stack) cpu() ([]ProcessCPU, error) {
	if err := st.exited(); err != nil {
		return nil, err
	}
	type pid struct {
		name string
		pid  int
	}
	var pids []pid
	for _, p := range st.procs {
		pids = append(pids, pid{p.name, p.cmd.Process.Pid})
	}
	pids = append(pids, pid{"temporal server", st.temporal.PID()}, pid{"lethe bench (load, floor worker)", os.Getpid()})
	var out []ProcessCPU
	for _, p := range pids {
		s, err := cpuSeconds(p.pid)
		if err != nil {
			return nil, fmt.Errorf("reading the CPU time of %s: %w", p.name, err)
		}
		out = append(out, ProcessCPU{Name: p.name, Seconds: s})
	}
	return out, nil
}

// cpuSeconds is utime + stime of a process, from /proc/PID/stat.
func cpuSeconds(pid int) (float64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces; the fields follow the last ")".
	i := strings.LastIndexByte(string(raw), ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(u+s) / clockTicks, nil
}

// statsFlush is how long PostgreSQL 15 backends may hold their statistics before reporting
// them (PGSTAT_IDLE_INTERVAL is 10 s).
const statsFlush = 11 * time.Second

// xacts are the transactions committed and rolled back so far in Lethe's database and in the
// connectors' databases. pg_stat_statements would count statements, but it needs the server
// started with it preloaded, which a shared server often is not.
func (st *stack) xacts(ctx context.Context) ([2]int64, error) {
	select {
	case <-ctx.Done():
		return [2]int64{}, ctx.Err()
	case <-time.After(statsFlush):
	}
	conn, err := pgx.Connect(ctx, st.o.DatabaseURL)
	if err != nil {
		return [2]int64{}, err
	}
	defer conn.Close(ctx)
	var out [2]int64
	rows, err := conn.Query(ctx, `SELECT datname, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = ANY($1)`, st.dbs)
	if err != nil {
		return out, fmt.Errorf("reading pg_stat_database: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return out, err
		}
		if name == st.dbs[0] {
			out[0] += n
		} else {
			out[1] += n
		}
	}
	return out, rows.Err()
}

// effects counts the changes applied to the rows of the timed phase's customers in every
// connector's database, and the most any one row got (1 when nothing was applied twice).
func (st *stack) effects(ctx context.Context) (total, most int, err error) {
	for _, db := range st.demos {
		var n, m int
		err := db.QueryRow(ctx, `SELECT coalesce(sum(c), 0), coalesce(max(c), 0) FROM (
			SELECT count(*) AS c FROM demo_changes WHERE table_name = 'customers' AND row_id BETWEEN 5 AND $1 GROUP BY row_id) per_row`,
			4+st.o.Requests).Scan(&n, &m)
		if err != nil {
			return 0, 0, fmt.Errorf("counting the changes applied: %w", err)
		}
		total, most = total+n, max(most, m)
	}
	return total, most, nil
}

// profile starts CPU profiles of the profiled processes for o.ProfileFor; the returned
// function waits for them and then takes their allocation profiles.
func (st *stack) profile(ctx context.Context) func() error {
	if st.o.Profile == "" {
		return func() error { return nil }
	}
	if err := os.MkdirAll(st.o.Profile, 0o755); err != nil {
		return func() error { return err }
	}
	var wg sync.WaitGroup
	errs := make([]error, len(st.procs))
	for i, p := range st.procs {
		if p.pprof == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fetch(ctx, "http://"+p.pprof+"/debug/pprof/profile?seconds="+strconv.Itoa(int(st.o.ProfileFor.Seconds())), st.profileFile(p, "cpu"))
		}()
	}
	return func() error {
		wg.Wait()
		for _, p := range st.procs {
			if p.pprof != "" {
				errs = append(errs, fetch(ctx, "http://"+p.pprof+"/debug/pprof/allocs", st.profileFile(p, "allocs")))
			}
		}
		return errors.Join(errs...)
	}
}

func (st *stack) profileFile(p *proc, kind string) string {
	return filepath.Join(st.o.Profile, strings.Fields(p.name)[0]+"."+kind+".pprof")
}

func fetch(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("fetching a profile: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("fetching %s: %s", url, res.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
