// Package bench measures Lethe end to end (lethe bench): requests submitted over the API and
// over Kafka run through separate worker, bridge, runner and serve processes on the real
// Temporal dev server, Kafka and PostgreSQL, against Temporal's own floor measured on the same
// server in the same run (a bare workflow of four no-op activities, started directly).
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// Options size one run.
type Options struct {
	// Requests is how many requests go through Lethe and through the floor.
	Requests int
	// Concurrency is how many are in flight at once, in both.
	Concurrency int
	// Workers, Bridges and Runners are the process counts: Runners per connector instance.
	Workers, Bridges, Runners int
	// Rounds alternate the floor and Lethe, each over Requests/Rounds.
	Rounds int
	// Connectors is the number of database connector instances each request fans out to.
	Connectors int
	// Partitions per Kafka topic.
	Partitions int
	// IntakeRate and IntakeFor are the offered load of the API intake measurement (0 skips it).
	IntakeRate int
	IntakeFor  time.Duration
	// DatabaseURL is an admin URL of a PostgreSQL server: the run creates its databases there
	// and drops them at the end.
	DatabaseURL string
	// Brokers of a Kafka cluster; the run's topics get a prefix of their own.
	Brokers []string
	// TemporalBin is the Temporal CLI whose dev server the run starts.
	TemporalBin string
	// Binary is the lethe binary the processes run (default: this executable).
	Binary string
	// Profile, when set, is a directory for CPU and allocation profiles of the worker, the
	// first bridge and the first runner, taken over ProfileFor of the Lethe phase.
	Profile    string
	ProfileFor time.Duration
	// Out gets the table; Progress the progress bar (nil: none).
	Out, Progress io.Writer
}

func (o *Options) defaults() error {
	if o.Requests <= 0 {
		o.Requests = 2000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	o.Workers, o.Bridges, o.Runners = max(o.Workers, 1), max(o.Bridges, 1), max(o.Runners, 1)
	o.Rounds = min(max(o.Rounds, 1), o.Requests)
	if o.Connectors <= 0 {
		o.Connectors = 4
	}
	if o.Partitions <= 0 {
		o.Partitions = max(4, o.Workers, o.Bridges, o.Runners)
	}
	if o.ProfileFor <= 0 {
		o.ProfileFor = 20 * time.Second
	}
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("finding the lethe binary: %w", err)
		}
		o.Binary = exe
	}
	switch {
	case o.DatabaseURL == "":
		return errors.New("--postgres: the admin URL of a PostgreSQL server is required (lethe stack writes LETHE_TEST_DATABASE_URL)")
	case len(o.Brokers) == 0:
		return errors.New("--kafka: the bootstrap address of a Kafka broker is required (lethe stack writes LETHE_TEST_KAFKA_BROKERS)")
	case o.IntakeRate < 0:
		return errors.New("--intake-rate must not be negative")
	}
	return nil
}

// Report is what one run measured.
type Report struct {
	Options Options
	Floor   Phase
	Lethe   Phase
	// CPU is the CPU time of each process during the Lethe phase, by process name.
	CPU []ProcessCPU
	// FloorServerCPU is the Temporal server's CPU seconds during the floor's rounds.
	FloorServerCPU float64
	// Xacts are PostgreSQL transactions during the Lethe phase: Lethe's database, and the
	// connectors' databases together.
	LetheXacts, ConnectorXacts int64
	// Mails is the number of messages Mailgun's stand-in accepted during the Lethe phase.
	Mails int
	// Effects: changes applied to customers' rows (one per erasure or rectification), and the
	// largest number of changes any one row got.
	Effects, WantEffects, MaxChangesPerRow int
	Intake                                 *IntakeResult
}

// Phase is one timed set of requests.
type Phase struct {
	Completed, Failed int
	Wall              time.Duration
	Latencies         []time.Duration
	// Err is the first failure, if any.
	Err error
}

// add counts q in p.
func (p *Phase) add(q Phase) {
	p.Completed += q.Completed
	p.Failed += q.Failed
	p.Wall += q.Wall
	p.Latencies = append(p.Latencies, q.Latencies...)
	if p.Err == nil {
		p.Err = q.Err
	}
}

// PerSecond is completed requests a second.
func (p Phase) PerSecond() float64 {
	if p.Wall <= 0 {
		return 0
	}
	return float64(p.Completed) / p.Wall.Seconds()
}

// ProcessCPU is the CPU time (user and system) of one process during the Lethe phase.
type ProcessCPU struct {
	Name    string
	Seconds float64
}

// IntakeResult is the API intake alone at a fixed offered load.
type IntakeResult struct {
	Offered, Accepted, Refused int
	Rate                       int
	Wall                       time.Duration
	Latencies                  []time.Duration
	// Err is the first refusal or failure, if any.
	Err error
}

// Run starts the stack, measures the floor, Lethe, and the API intake, and returns the report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	st, err := startStack(ctx, o)
	if err != nil {
		return nil, err
	}
	defer st.close()
	rep := &Report{Options: o, WantEffects: st.wantEffects() * o.Connectors}

	if err := st.rounds(ctx, rep); err != nil {
		return nil, err
	}
	if o.IntakeRate > 0 {
		step(o, "intake: %d requests a second over the API for %s, with the worker, bridges and runners stopped", o.IntakeRate, o.IntakeFor)
		if rep.Intake, err = st.runIntake(ctx); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// rounds alternates the floor and Lethe, o.Rounds times each over a share of o.Requests, so
// both meet the same load from whatever else runs on the machine.
func (st *stack) rounds(ctx context.Context, rep *Report) error {
	o := st.o
	step(o, "floor and lethe in %d rounds: %d workflows of four no-op activities, and %d requests (access, erasure, rectification; API and Kafka), %d in flight", o.Rounds, o.Requests, o.Requests, o.Concurrency)
	f, err := st.startFloor(ctx)
	if err != nil {
		return err
	}
	defer f.stop()
	if err := st.letheWarmup(ctx); err != nil {
		return err
	}
	x0, err := st.xacts(ctx)
	if err != nil {
		return err
	}
	mail0 := st.mail.sent.Load()
	profiled := st.profile(ctx)
	for r := range o.Rounds {
		from, to := r*o.Requests/o.Rounds, (r+1)*o.Requests/o.Rounds
		t0, err := cpuSeconds(st.temporal.PID())
		if err != nil {
			return err
		}
		rep.Floor.add(f.round(ctx, from, to-from))
		t1, err := cpuSeconds(st.temporal.PID())
		if err != nil {
			return err
		}
		rep.FloorServerCPU += t1 - t0
		if err := st.letheRound(ctx, rep, from, to-from); err != nil {
			return err
		}
	}
	if err := profiled(); err != nil {
		return err
	}
	return st.letheTotals(ctx, rep, x0, mail0)
}

func step(o Options, format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "==> "+format+"\n", args...)
	}
}
