package e2e_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/breaches"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// BenchmarkBreachNotice notifies the people affected by a breach with the real
// BreachNoticeWorkflow (a `lethe worker` process, the Temporal dev server, PostgreSQL, the
// Mailgun stand-in) and, in the same run, with the floor: a plain loop sending the same
// batches through the same Mailgun client, as many at a time, with no workflow and no
// register, once before and once after the workflow (the floor is their mean). It reports both times, their throughput ratio and the worker's peak RSS (VmHWM)
// after the first tenth of the people and at the end; progress goes to stderr.
//
//	go test -run '^$' -bench BreachNotice ./internal/e2e/                          # 20,000 people
//	LETHE_BENCH_SCALE=full go test -run '^$' -bench BreachNotice -timeout 2h ./internal/e2e/ # 1,000,000
//	LETHE_BENCH_PEOPLE=100000 go test -run '^$' -bench BreachNotice ./internal/e2e/           # any size
func BenchmarkBreachNotice(b *testing.B) {
	people := 20_000
	if os.Getenv("LETHE_BENCH_SCALE") == "full" {
		people = 1_000_000
	}
	if n, err := strconv.Atoi(os.Getenv("LETHE_BENCH_PEOPLE")); err == nil && n > 0 {
		people = n // any other size, e.g. to profile
	}
	f := runNoticeBench(b, people)
	b.ReportMetric(f.loop.Seconds(), "loop-s")
	b.ReportMetric(f.loops[0].Seconds(), "loop-before-s")
	b.ReportMetric(f.loops[1].Seconds(), "loop-after-s")
	b.ReportMetric(f.workflow.Seconds(), "workflow-s")
	b.ReportMetric(f.ratio(), "throughput-ratio")
	b.ReportMetric(float64(people)/f.workflow.Seconds(), "people/s")
	b.ReportMetric(f.rssTenth, "worker-peak-RSS-MiB-tenth")
	b.ReportMetric(f.rssEnd, "worker-peak-RSS-MiB-end")
}

// The benchmark's code runs in CI too, at a size that takes seconds.
func TestBreachNoticeBenchmarkRunsSmall(t *testing.T) {
	runNoticeBench(t, 3_000)
}

type noticeFigures struct {
	loops            [2]time.Duration // before and after the workflow
	loop, workflow   time.Duration
	rssTenth, rssEnd float64 // MiB
}

// ratio is the workflow's throughput over the loop's.
func (f noticeFigures) ratio() float64 { return f.loop.Seconds() / f.workflow.Seconds() }

func runNoticeBench(tb testing.TB, people int) noticeFigures {
	s := &stack{Stack: teststack.New(tb, teststack.Options{Name: "bench"}), t: tb}
	s.Standin.CountOnly() // a million people's copies would take gigabytes
	ctx := context.Background()
	worker := s.start("worker")

	id := "B-" + testenv.Suffix()
	svc := s.Deps.Breaches()
	content := store.Art33{Nature: "The booking database was copied by an intruder.", ContactPoint: "dpo@salon.example",
		Consequences: "Your name, email and phone may be used for phishing.", Measures: "We closed the hole and reset every password."}
	_, err := svc.Open(ctx, breaches.Opening{BreachID: id, TenantID: "salon", Title: "Database copied", AwareAt: time.Now().Add(-time.Hour),
		Content: &content, OpenedBy: "dpo"})
	require.NoError(tb, err)
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachAssessment, workflows.BreachAssessment{Risk: "high", Rationale: "health notes", Actor: "dpo"})
	require.NoError(tb, err)
	rs := make([]store.Recipient, people)
	for i := range rs {
		rs[i] = store.Recipient{Seq: int64(i + 1), Email: fmt.Sprintf("person%07d@bench.example", i+1)}
	}
	start := time.Now()
	added, err := s.Deps.Store.Notices().AddRecipients(ctx, s.Cfg.Secrets.SigningKey.Value(), id, "upload", rs)
	require.NoError(tb, err)
	require.EqualValues(tb, people, added)
	tb.Logf("listed %d people in %s", people, time.Since(start).Round(time.Millisecond))
	batches := (people + mail.MaxBatch - 1) / mail.MaxBatch
	nc := activities.NoticeContent{Nature: content.Nature, ContactPoint: content.ContactPoint, Consequences: content.Consequences, Measures: content.Measures}

	// The floor: the same batches through the same client, four at a time like the workflow,
	// before and after the workflow (the machine's load drifts; the floor is their mean).
	var f noticeFigures
	f.loops[0] = sendLoop(tb, s, id, nc, rs)

	// The workflow: the upload's people, notified by the breach's notice run.
	pid := worker.cmd.Process.Pid
	tenth := make(chan float64, 1)

	stop := showProgress("workflow", s, batches, func(sent int) {
		if sent >= max(batches/10, 1) && len(tenth) == 0 {
			tenth <- peakRSS(pid)
		}
	})
	start = time.Now()
	_, err = svc.Update(ctx, "salon", id, workflows.UpdateBreachSubjects, workflows.BreachSubjects{Uploaded: added, Actor: "dpo"})
	require.NoError(tb, err)
	var p workflows.NoticeProgress
	require.NoError(tb, s.Deps.Temporal.GetWorkflow(ctx, id+"-notice-1", "").Get(ctx, &p))
	f.workflow = time.Since(start)
	stop()
	f.rssEnd = peakRSS(pid)
	require.Positive(tb, f.rssEnd, "the worker's peak RSS (VmHWM of process %d)", pid)
	select {
	case f.rssTenth = <-tenth:
	default:
		f.rssTenth = f.rssEnd
	}
	require.EqualValues(tb, people, p.Sent, "people the run sent to")
	checkOnce(tb, s, rs)
	s.Standin.Reset()
	f.loops[1] = sendLoop(tb, s, id, nc, rs)
	f.loop = (f.loops[0] + f.loops[1]) / 2
	tb.Logf("%d people in %d batches: loop %s (%s before, %s after), workflow %s, workflow/loop throughput %.2f; worker peak RSS %.1f MiB after %d people, %.1f MiB after %d",
		people, batches, f.loop.Round(time.Millisecond), f.loops[0].Round(time.Millisecond), f.loops[1].Round(time.Millisecond), f.workflow.Round(time.Millisecond), f.ratio(),
		f.rssTenth, max(batches/10, 1)*mail.MaxBatch, f.rssEnd, people)
	return f
}

// sendLoop sends the notice to rs in batches through the stack's Mailgun client, four at a
// time, with no workflow and no register, and checks everyone got one copy.
func sendLoop(tb testing.TB, s *stack, breachID string, nc activities.NoticeContent, rs []store.Recipient) time.Duration {
	ctx := context.Background()
	client := s.Deps.Batch
	salon := mail.Branding{Name: "Salon Example", ContactEmail: "privacy@salon.example"} // as teststack.Salon
	batches := (len(rs) + mail.MaxBatch - 1) / mail.MaxBatch
	stop := showProgress("loop", s, batches)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n := int(next.Add(1))
				if n > batches {
					return
				}
				nb := activities.NoticeBatch{BreachID: breachID, TenantID: "salon", Run: 1, Batch: n, Size: mail.MaxBatch, Content: nc}
				if _, err := client.SendBatch(ctx, activities.NoticeMessage(salon, nb, rs[(n-1)*mail.MaxBatch:min(n*mail.MaxBatch, len(rs))])); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	stop()
	close(errs)
	require.NoError(tb, <-errs)
	checkOnce(tb, s, rs)
	s.Standin.Reset()
	return took
}

// checkOnce checks that each person got exactly one copy, and nobody saw another's address.
func checkOnce(tb testing.TB, s *stack, rs []store.Recipient) {
	tb.Helper()
	counts := s.Standin.Count()
	require.Len(tb, counts, len(rs), "people who got the notice")
	for _, r := range rs {
		if counts[r.Email] != 1 {
			tb.Fatalf("person %d got %d copies", r.Seq, counts[r.Email])
		}
	}
	require.Zero(tb, s.Standin.Exposed(), "copies showing another address")
}

// showProgress prints the batches the stand-in accepted and the rate to stderr every few
// seconds, calling each watch with the count, until stop is called.
func showProgress(phase string, s *stack, total int, watch ...func(sent int)) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(finished)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			sent := s.Standin.Messages()
			for _, w := range watch {
				w(sent)
			}
			if time.Since(last) >= 5*time.Second {
				last = time.Now()
				el := time.Since(start).Seconds()
				fmt.Fprintf(os.Stderr, "%s: %d/%d batches sent, %.1f batches/s, %.0f people/s\n", phase, sent, total, float64(sent)/el, float64(sent*mail.MaxBatch)/el)
			}
		}
	}()
	return func() { close(done); <-finished }
}

// peakRSS reads a process's peak resident set size (VmHWM) in MiB; 0 if it cannot.
func peakRSS(pid int) float64 {
	raw, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
