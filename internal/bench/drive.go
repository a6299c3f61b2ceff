package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/schemas"
)

// warmup requests run before the Lethe phase is timed, so every consumer has joined its group
// and every connection is open.
const warmup = 8

// requestTimeout bounds one request from intake to completion.
const requestTimeout = 5 * time.Minute

var kinds = []string{domain.TypeAccess, domain.TypeErasure, domain.TypeRectification}

// kindOf is request i's type: the three in turn.
func kindOf(i int) string { return kinds[i%len(kinds)] }

// overKafka says whether request i comes in over Kafka (else the API): every other triple, so
// each type comes in both ways.
func overKafka(i int) bool { return (i/len(kinds))%2 == 1 }

// pool runs fn(i) for i in [0, n) with c in flight, reporting progress, and returns the phase.
func pool(ctx context.Context, n, c int, bar *progress, fn func(ctx context.Context, i int) error) (Phase, error) {
	var (
		next      atomic.Int64
		mu        sync.Mutex
		ph        Phase
		firstErr  error
		wg        sync.WaitGroup
		startedAt = time.Now()
	)
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := fn(ctx, i)
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					ph.Failed++
					if firstErr == nil {
						firstErr = fmt.Errorf("request %d: %w", i, err)
					}
				} else {
					ph.Completed++
					ph.Latencies = append(ph.Latencies, d)
				}
				done := ph.Completed + ph.Failed
				mu.Unlock()
				bar.set(done)
			}
		}()
	}
	wg.Wait()
	ph.Wall = time.Since(startedAt)
	bar.finish()
	ph.Err = firstErr
	return ph, firstErr
}

// letheWarmup runs requests through Lethe before anything is timed, so every consumer has
// joined its group and every connection is open; warm-up requests use the customers past the
// timed ones.
func (st *stack) letheWarmup(ctx context.Context) error {
	if _, err := pool(ctx, warmup, min(warmup, st.o.Concurrency), newProgress(nil, "warm-up", warmup), func(ctx context.Context, i int) error {
		return st.request(ctx, i, st.o.Requests+i)
	}); err != nil {
		return fmt.Errorf("warming up: %w", err)
	}
	return nil
}

// letheRound times requests [from, from+n) through Lethe and adds what each process spent on
// them to rep.
func (st *stack) letheRound(ctx context.Context, rep *Report, from, n int) error {
	cpu0, err := st.cpu()
	if err != nil {
		return err
	}
	// A failed request is reported with the rest (Report.Check), not in place of it.
	ph, _ := pool(ctx, n, st.o.Concurrency, newProgress(st.o.Progress, "lethe", n), func(ctx context.Context, i int) error {
		return st.request(ctx, from+i, from+i)
	})
	rep.Lethe.add(ph)
	cpu1, err := st.cpu()
	if err != nil {
		return err
	}
	if rep.CPU == nil {
		rep.CPU = make([]ProcessCPU, len(cpu1))
	}
	for i, c := range cpu1 {
		rep.CPU[i].Name = c.Name
		rep.CPU[i].Seconds += c.Seconds - cpu0[i].Seconds
	}
	return nil
}

// letheTotals adds what the timed requests wrote (counted from before the first round) to rep.
func (st *stack) letheTotals(ctx context.Context, rep *Report, x0 [2]int64, mail0 int64) error {
	rep.Mails = int(st.mail.sent.Load() - mail0)
	x1, err := st.xacts(ctx)
	if err != nil {
		return err
	}
	rep.LetheXacts, rep.ConnectorXacts = x1[0]-x0[0], x1[1]-x0[1]
	rep.Effects, rep.MaxChangesPerRow, err = st.effects(ctx)
	return err
}

// request submits request i for subject s and waits until it completes.
func (st *stack) request(ctx context.Context, i, s int) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := st.exited(); err != nil {
		return err
	}
	subject := connectors.Subject{Email: st.subjects[s]}
	var changes map[string]string
	if kindOf(i) == domain.TypeRectification {
		changes = map[string]string{"city": "Benchton"}
	}
	var id string
	var err error
	if overKafka(i) {
		id, err = st.viaKafka(ctx, kindOf(i), subject, changes, s)
	} else {
		id, err = st.viaAPI(ctx, kindOf(i), subject, changes)
	}
	if err != nil {
		return err
	}
	return st.await(ctx, id)
}

// viaAPI submits with the host app's identity assertion: verified on arrival.
func (st *stack) viaAPI(ctx context.Context, kind string, s connectors.Subject, changes map[string]string) (string, error) {
	now := time.Now()
	assertion, err := identity.SignAssertion(st.key, identity.Assertion{Email: s.Email, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)}, identity.Audience(st.url, tenant))
	if err != nil {
		return "", err
	}
	var out struct {
		RequestID string `json:"request_id"`
	}
	body := map[string]any{"type": kind, "subject": s, "identity_assertion": assertion}
	if changes != nil {
		body["changes"] = changes
	}
	if err := st.post(ctx, "/v1/requests", body, http.StatusCreated, &out); err != nil {
		return "", err
	}
	return out.RequestID, nil
}

// viaKafka publishes an intake message; such a request waits for the subject's email code,
// which the run reads from the mail and enters over the API.
func (st *stack) viaKafka(ctx context.Context, kind string, s connectors.Subject, changes map[string]string, n int) (string, error) {
	id := "bench-" + st.suffix + "-" + strconv.Itoa(n)
	code := st.mail.expect(id)
	msg := map[string]any{"schema": schemas.RequestIntake, "version": schemas.Version, "request_id": id,
		"tenant_id": tenant, "type": kind, "subject": s}
	if changes != nil {
		msg["changes"] = changes
	}
	if err := st.lethe.Bus.Publish(ctx, bus.TopicIntake, id, msg); err != nil {
		return "", err
	}
	var c string
	select {
	case c = <-code:
	case <-ctx.Done():
		return "", fmt.Errorf("no verification code mailed for %s: %w", id, ctx.Err())
	}
	// The code is stored once its mail went out; a subject quicker than that is told
	// no_code, and tries again.
	for {
		err := st.post(ctx, "/v1/requests/"+id+"/verify", map[string]string{"code": c}, http.StatusOK, nil)
		if err == nil || !strings.Contains(err.Error(), `"no_code"`) {
			return id, err
		}
		select {
		case <-ctx.Done():
			return "", err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (st *stack) post(ctx context.Context, path string, body any, want int, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.url+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+st.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		return fmt.Errorf("POST %s: %s: %s", path, res.Status, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// await waits for the request's workflow to complete the request.
func (st *stack) await(ctx context.Context, id string) error {
	for {
		var s domain.RequestState
		err := st.lethe.Temporal.GetWorkflow(ctx, id, "").Get(ctx, &s)
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
			// Started by intake a moment from now.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			continue
		case err != nil:
			return fmt.Errorf("request %s: %w", id, err)
		case s.Status != domain.StatusCompleted:
			return fmt.Errorf("request %s ended %s", id, s.Status)
		}
		return nil
	}
}

// runIntake offers o.IntakeRate API submissions a second for o.IntakeFor, with nothing
// behind the API consuming: what serve, PostgreSQL and Temporal's start take alone.
func (st *stack) runIntake(ctx context.Context) (*IntakeResult, error) {
	for _, p := range st.procs[1:] {
		p.stop()
	}
	n := int(float64(st.o.IntakeRate) * st.o.IntakeFor.Seconds())
	res := &IntakeResult{Offered: n, Rate: st.o.IntakeRate}
	bar := newProgress(st.o.Progress, "intake", n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(st.o.IntakeRate))
	defer tick.Stop()
	start := time.Now()
	for i := range n {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			_, err := st.viaAPI(ctx, domain.TypeAccess, connectors.Subject{Email: st.subjects[i%len(st.subjects)]}, nil)
			d := time.Since(t0)
			mu.Lock()
			if err != nil {
				res.Refused++
				if res.Err == nil {
					res.Err = err
				}
			} else {
				res.Accepted++
				res.Latencies = append(res.Latencies, d)
			}
			done := res.Accepted + res.Refused
			mu.Unlock()
			bar.set(done)
		}()
	}
	wg.Wait()
	res.Wall = time.Since(start)
	bar.finish()
	return res, nil
}
