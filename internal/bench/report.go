package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// progress draws a one-line bar on a terminal-like writer; a nil writer draws nothing.
type progress struct {
	w     io.Writer
	label string
	total int
	start time.Time
	mu    sync.Mutex
	last  time.Time
}

func newProgress(w io.Writer, label string, total int) *progress {
	return &progress{w: w, label: label, total: total, start: time.Now()}
}

func (p *progress) set(done int) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < p.total && time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	const width = 30
	filled := width * done / max(p.total, 1)
	rate := float64(done) / max(time.Since(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "\r%-7s [%s%s] %d/%d  %.1f/s ", p.label, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, p.total, rate)
}

func (p *progress) finish() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}

// quantile is the q-quantile of ds (nearest rank); zero for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

// Ratio is Lethe's completed requests a second over the floor's workflows a second.
func (r *Report) Ratio() float64 {
	if r.Floor.PerSecond() == 0 {
		return 0
	}
	return r.Lethe.PerSecond() / r.Floor.PerSecond()
}

// Print writes the summary table.
func (r *Report) Print(w io.Writer) {
	o := r.Options
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%d requests in %d round(s), %d in flight; %d worker(s), %d bridge(s), %d runner(s) per connector, %d connectors, %d partitions\n\n",
		o.Requests, o.Rounds, o.Concurrency, o.Workers, o.Bridges, o.Runners, o.Connectors, o.Partitions)
	fmt.Fprintln(tw, "\tcompleted\tfailed\tper second\tp50\tp95\tp99")
	for _, row := range []struct {
		name string
		p    Phase
	}{{"floor (4 no-op activities)", r.Floor}, {"lethe (intake to completion)", r.Lethe}} {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%s\t%s\t%s\n", row.name, row.p.Completed, row.p.Failed, row.p.PerSecond(),
			ms(quantile(row.p.Latencies, .5)), ms(quantile(row.p.Latencies, .95)), ms(quantile(row.p.Latencies, .99)))
	}
	fmt.Fprintf(tw, "\nratio lethe / floor\t%.2f\n", r.Ratio())
	n := float64(max(r.Lethe.Completed, 1))
	fmt.Fprintln(tw, "\nprocess\tCPU s\tCPU ms per request")
	total := 0.0
	for _, c := range r.CPU {
		total += c.Seconds
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\n", c.Name, c.Seconds, 1000*c.Seconds/n)
	}
	fmt.Fprintf(tw, "all\t%.1f\t%.1f\n", total, 1000*total/n)
	fmt.Fprintf(tw, "temporal server, floor (per workflow)\t%.1f\t%.1f\n", r.FloorServerCPU, 1000*r.FloorServerCPU/float64(max(r.Floor.Completed, 1)))
	fmt.Fprintln(tw, "\nper request\t")
	fmt.Fprintf(tw, "PostgreSQL transactions, Lethe's database\t%.1f\n", float64(r.LetheXacts)/n)
	fmt.Fprintf(tw, "PostgreSQL transactions, connectors' databases\t%.1f\n", float64(r.ConnectorXacts)/n)
	fmt.Fprintf(tw, "mails sent\t%.1f\n", float64(r.Mails)/n)
	fmt.Fprintf(tw, "customer rows changed (want %d, at most once each)\t%d, at most %d per row\n", r.WantEffects, r.Effects, r.MaxChangesPerRow)
	if in := r.Intake; in != nil {
		fmt.Fprintf(tw, "\nAPI intake alone, %d/s offered for %s\t\n", in.Rate, o.IntakeFor)
		fmt.Fprintf(tw, "offered\t%d\n", in.Offered)
		fmt.Fprintf(tw, "accepted (201)\t%d\n", in.Accepted)
		fmt.Fprintf(tw, "refused or failed\t%d\n", in.Refused)
		fmt.Fprintf(tw, "accepted per second\t%.1f\n", float64(in.Accepted)/max(in.Wall.Seconds(), 1e-9))
		fmt.Fprintf(tw, "p50 / p99 latency\t%s / %s\n", ms(quantile(in.Latencies, .5)), ms(quantile(in.Latencies, .99)))
	}
	_ = tw.Flush()
}

// Check says what the run got wrong: a failed request, a change applied twice or missing, a
// refused intake.
func (r *Report) Check() error {
	var problems []string
	if r.Lethe.Failed > 0 || r.Floor.Failed > 0 {
		problems = append(problems, fmt.Sprintf("%d Lethe requests and %d floor workflows failed (%v)", r.Lethe.Failed, r.Floor.Failed, errors.Join(r.Lethe.Err, r.Floor.Err)))
	}
	if r.Effects != r.WantEffects || r.MaxChangesPerRow > 1 {
		problems = append(problems, fmt.Sprintf("%d customer row changes, want %d with at most one per row (got up to %d)", r.Effects, r.WantEffects, r.MaxChangesPerRow))
	}
	if r.Intake != nil && r.Intake.Refused > 0 {
		problems = append(problems, fmt.Sprintf("the API refused %d of %d intake submissions (the first: %v)", r.Intake.Refused, r.Intake.Offered, r.Intake.Err))
	}
	if len(problems) > 0 {
		return fmt.Errorf("bench: %s", strings.Join(problems, "; "))
	}
	return nil
}
