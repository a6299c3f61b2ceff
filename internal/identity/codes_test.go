package identity_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var codeKey = []byte("deployment-signing-key-for-tests")

func openDB(t *testing.T) *pgxpool.Pool { return testenv.Store(t).Pool }

func addRequest(t *testing.T, pool *pgxpool.Pool, id, status string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		INSERT INTO requests (id, tenant_id, type, status, regime, received_at)
		VALUES ($1, 'acme', 'access', $2, 'gdpr', now())`, id, status)
	if err != nil {
		t.Fatal(err)
	}
}

func setStatus(t *testing.T, pool *pgxpool.Pool, id, status string) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), `UPDATE requests SET status = $2 WHERE id = $1`, id, status); err != nil {
		t.Fatal(err)
	}
}

func newCodes(t *testing.T) (*identity.Codes, *clock, *pgxpool.Pool) {
	pool := openDB(t)
	c := &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	return &identity.Codes{Pool: pool, Key: codeKey, Now: c.Now}, c, pool
}

// issue sends a code to nobody and returns it, as a mail that was accepted.
func issue(codes *identity.Codes, ctx context.Context, id string) (string, time.Time, error) {
	return issueBy(codes, ctx, id, identity.ChannelEmail)
}

// issueBy is issue by channel.
func issueBy(codes *identity.Codes, ctx context.Context, id string, ch identity.Channel) (string, time.Time, error) {
	var code string
	exp, err := codes.Send(ctx, id, ch, func(c string, _ time.Time) error { code = c; return nil })
	return code, exp, err
}

// check is Codes.Check for the tests that look at its error only.
func check(codes *identity.Codes, ctx context.Context, id, code string) error {
	_, err := codes.Check(ctx, id, code)
	return err
}

// wrong returns a six-digit code that differs from code.
func wrong(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func TestIssueThenCheck(t *testing.T) {
	codes, clk, pool := newCodes(t)
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")

	code, exp, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9]{6}$`).MatchString(code) {
		t.Fatalf("code %q is not six digits", code)
	}
	if want := clk.Now().Add(15 * time.Minute); !exp.Equal(want) {
		t.Fatalf("expires %v, want %v (15 minutes default)", exp, want)
	}

	// Only the keyed hash is stored.
	var stored []byte
	if err := pool.QueryRow(ctx, `SELECT code_hash FROM verification_codes WHERE request_id = 'r1'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, codeKey)
	m.Write([]byte("r1:" + code))
	if !hmac.Equal(stored, m.Sum(nil)) {
		t.Fatal("stored hash is not HMAC-SHA256(key, requestID:code)")
	}

	if err := check(codes, ctx, "r1", code); err != nil {
		t.Fatalf("right code refused: %v", err)
	}
	var used *time.Time
	if err := pool.QueryRow(ctx, `SELECT used_at FROM verification_codes WHERE request_id = 'r1'`).Scan(&used); err != nil {
		t.Fatal(err)
	}
	if used == nil || !used.Equal(clk.Now()) {
		t.Fatalf("used_at = %v, want %v", used, clk.Now())
	}
}

func TestReceivedRequestMayAskForCode(t *testing.T) {
	codes, _, pool := newCodes(t)
	addRequest(t, pool, "r1", "received")
	if _, _, err := issue(codes, context.Background(), "r1"); err != nil {
		t.Fatalf("a request not yet moved to identity_pending should get a code: %v", err)
	}
}

func TestIssueRefusedForUnknownOrVerifiedRequest(t *testing.T) {
	codes, _, pool := newCodes(t)
	ctx := context.Background()
	if _, _, err := issue(codes, ctx, "nope"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("unknown request: got %v, want ErrNotFound", err)
	}
	addRequest(t, pool, "r1", "pending_approval")
	if _, _, err := issue(codes, ctx, "r1"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("verified request: got %v, want ErrNotFound", err)
	}
}

func TestCheckErrors(t *testing.T) {
	ctx := context.Background()

	t.Run("no code", func(t *testing.T) {
		codes, _, pool := newCodes(t)
		addRequest(t, pool, "r1", "identity_pending")
		if err := check(codes, ctx, "r1", "123456"); !errors.Is(err, identity.ErrNoCode) {
			t.Fatalf("got %v, want ErrNoCode", err)
		}
		if err := check(codes, ctx, "missing", "123456"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("unknown request: got %v, want ErrNotFound", err)
		}
	})

	t.Run("expired", func(t *testing.T) {
		codes, clk, pool := newCodes(t)
		addRequest(t, pool, "r1", "identity_pending")
		code, _, err := issue(codes, ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(15*time.Minute - time.Second)
		if err := check(codes, ctx, "r1", wrong(code)); !errors.Is(err, identity.ErrWrongCode) {
			t.Fatalf("before expiry: got %v, want ErrWrongCode", err)
		}
		clk.Advance(time.Second)
		if err := check(codes, ctx, "r1", code); !errors.Is(err, identity.ErrExpired) {
			t.Fatalf("at expiry: got %v, want ErrExpired", err)
		}
		// A new code works again.
		code, _, err = issue(codes, ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if err := check(codes, ctx, "r1", code); err != nil {
			t.Fatalf("fresh code after expiry: %v", err)
		}
	})

	t.Run("custom ttl", func(t *testing.T) {
		codes, clk, pool := newCodes(t)
		codes.TTL = time.Minute
		addRequest(t, pool, "r1", "identity_pending")
		code, exp, err := issue(codes, ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if !exp.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("expires %v, want in one minute", exp)
		}
		clk.Advance(time.Minute)
		if err := check(codes, ctx, "r1", code); !errors.Is(err, identity.ErrExpired) {
			t.Fatalf("got %v, want ErrExpired", err)
		}
	})

	t.Run("reused", func(t *testing.T) {
		codes, _, pool := newCodes(t)
		addRequest(t, pool, "r1", "identity_pending")
		code, _, err := issue(codes, ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		if err := check(codes, ctx, "r1", code); err != nil {
			t.Fatal(err)
		}
		if err := check(codes, ctx, "r1", code); !errors.Is(err, identity.ErrUsed) {
			t.Fatalf("second use: got %v, want ErrUsed", err)
		}
		// Still refused once the workflow has moved on.
		setStatus(t, pool, "r1", "pending_approval")
		if err := check(codes, ctx, "r1", code); !errors.Is(err, identity.ErrUsed) {
			t.Fatalf("use after verification: got %v, want ErrUsed", err)
		}
	})

	t.Run("request no longer awaiting identity", func(t *testing.T) {
		codes, _, pool := newCodes(t)
		addRequest(t, pool, "r1", "identity_pending")
		code, _, err := issue(codes, ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		setStatus(t, pool, "r1", "canceled")
		if err := check(codes, ctx, "r1", code); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("got %v, want ErrNotFound", err)
		}
	})

	t.Run("code of another request", func(t *testing.T) {
		codes, _, pool := newCodes(t)
		addRequest(t, pool, "r1", "identity_pending")
		addRequest(t, pool, "r2", "identity_pending")
		c1, _, err := issue(codes, ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		c2, _, err := issue(codes, ctx, "r2")
		if err != nil {
			t.Fatal(err)
		}
		if c1 == c2 {
			t.Skip("both requests drew the same code")
		}
		if err := check(codes, ctx, "r2", c1); !errors.Is(err, identity.ErrWrongCode) {
			t.Fatalf("got %v, want ErrWrongCode", err)
		}
	})
}

func TestTooManyAttempts(t *testing.T) {
	codes, _, pool := newCodes(t)
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	code, _, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		err := check(codes, ctx, "r1", wrong(code))
		if !errors.Is(err, identity.ErrWrongCode) || errors.Is(err, identity.ErrTooManyAttempts) {
			t.Fatalf("wrong try %d: got %v, want ErrWrongCode only", i, err)
		}
	}
	err = check(codes, ctx, "r1", wrong(code))
	if !errors.Is(err, identity.ErrWrongCode) || !errors.Is(err, identity.ErrTooManyAttempts) {
		t.Fatalf("fifth wrong try: got %v, want ErrWrongCode and ErrTooManyAttempts", err)
	}
	// The code is dead: even the right one is refused.
	if err := check(codes, ctx, "r1", code); !errors.Is(err, identity.ErrTooManyAttempts) {
		t.Fatalf("right code after the limit: got %v, want ErrTooManyAttempts", err)
	}
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT attempts FROM verification_codes WHERE request_id = 'r1'`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 5 {
		t.Fatalf("attempts = %d, want 5 (refusals after the limit do not count)", attempts)
	}
	// A new code resets the attempts.
	code, _, err = issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := check(codes, ctx, "r1", code); err != nil {
		t.Fatalf("new code after the limit: %v", err)
	}
}

func TestNewCodeReplacesOld(t *testing.T) {
	codes, _, pool := newCodes(t)
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	old, _, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if old != code {
		if err := check(codes, ctx, "r1", old); !errors.Is(err, identity.ErrWrongCode) {
			t.Fatalf("replaced code: got %v, want ErrWrongCode", err)
		}
	}
	if err := check(codes, ctx, "r1", code); err != nil {
		t.Fatalf("current code: %v", err)
	}
}

func TestTooManyCodes(t *testing.T) {
	codes, clk, pool := newCodes(t)
	codes.MaxIssuesPerHour = 3
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	addRequest(t, pool, "r2", "identity_pending")
	for i := 1; i <= 3; i++ {
		if _, _, err := issue(codes, ctx, "r1"); err != nil {
			t.Fatalf("code %d: %v", i, err)
		}
		clk.Advance(10 * time.Minute)
	}
	// 30 minutes after the first code.
	if _, _, err := issue(codes, ctx, "r1"); !errors.Is(err, identity.ErrTooManyCodes) {
		t.Fatalf("fourth code within the hour: got %v, want ErrTooManyCodes", err)
	}
	// The limit is per request.
	if _, _, err := issue(codes, ctx, "r2"); err != nil {
		t.Fatalf("other request: %v", err)
	}
	clk.Advance(29*time.Minute + 59*time.Second)
	if _, _, err := issue(codes, ctx, "r1"); !errors.Is(err, identity.ErrTooManyCodes) {
		t.Fatalf("one second before the hour is over: got %v, want ErrTooManyCodes", err)
	}
	clk.Advance(time.Second)
	code, _, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatalf("an hour after the first code: %v", err)
	}
	// The refused issues did not replace the live code's hash with a code nobody received.
	if err := check(codes, ctx, "r1", code); err != nil {
		t.Fatal(err)
	}
}

func TestRefusedIssueKeepsLiveCode(t *testing.T) {
	codes, _, pool := newCodes(t)
	codes.MaxIssuesPerHour = 1
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	code, _, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := issue(codes, ctx, "r1"); !errors.Is(err, identity.ErrTooManyCodes) {
		t.Fatalf("got %v, want ErrTooManyCodes", err)
	}
	if err := check(codes, ctx, "r1", code); err != nil {
		t.Fatalf("the code sent before the refusal should still work: %v", err)
	}
}

func TestConcurrentChecksOfRightCodeOneWins(t *testing.T) {
	codes, _, pool := newCodes(t)
	ctx := context.Background()
	const n = 8
	for round := 0; round < 5; round++ {
		id := fmt.Sprintf("r%d", round)
		addRequest(t, pool, id, "identity_pending")
		code, _, err := issue(codes, ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = check(codes, ctx, id, code)
			}()
		}
		close(start)
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, identity.ErrUsed):
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d concurrent checks succeeded, want exactly 1", round, ok)
		}
	}
}

func TestConcurrentWrongTriesAllCount(t *testing.T) {
	codes, _, pool := newCodes(t)
	codes.MaxAttempts = 20
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	code, _, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = check(codes, ctx, "r1", wrong(code))
		}()
	}
	wg.Wait()
	var attempts int
	if err := pool.QueryRow(ctx, `SELECT attempts FROM verification_codes WHERE request_id = 'r1'`).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 12 {
		t.Fatalf("attempts = %d after 12 concurrent wrong tries; lost updates", attempts)
	}
}

func TestConcurrentFirstIssues(t *testing.T) {
	codes, _, pool := newCodes(t)
	codes.MaxIssuesPerHour = 3
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	const n = 8
	errs := make([]error, n)
	issued := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			issued[i], _, errs[i] = issue(codes, ctx, "r1")
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, identity.ErrTooManyCodes):
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 3 {
		t.Fatalf("%d of %d concurrent issues succeeded, want exactly the limit of 3", ok, n)
	}
}

func TestCodeRemovedWithRequest(t *testing.T) {
	codes, _, pool := newCodes(t)
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	if _, _, err := issue(codes, ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `DELETE FROM requests WHERE id = 'r1'`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM verification_codes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d codes left after the request was deleted", n)
	}
}

func TestErrorsNeverCarryTheCode(t *testing.T) {
	codes, _, pool := newCodes(t)
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")
	code, _, err := issue(codes, ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if err := check(codes, ctx, "r1", wrong(code)); err != nil && regexp.MustCompile(`[0-9]{6}`).MatchString(err.Error()) {
			t.Fatalf("error %q contains a code", err)
		}
	}
}
