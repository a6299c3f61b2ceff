// Package webtest runs MyAccount on a whole in-process Lethe for tests (see teststack), with
// the worker, the bridge and the demo salon's connector running and the HTTP surface,
// /myaccount and /dev/mailbox included, mounted as `lethe dev` mounts it.
package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/teststack"
)

// Tenant is the tenant MyAccount serves in the stack.
const Tenant = "salon"

// Stack is one test's Lethe (see teststack); URL + "/myaccount" is MyAccount.
type Stack = teststack.Stack

// Start builds and runs the stack, serving its whole HTTP surface as lethe dev does;
// everything stops when the test ends.
func Start(t testing.TB) *Stack {
	t.Helper()
	ts := teststack.New(t, teststack.Options{Name: "web", Listen: true, MailboxSize: 500})
	ts.RunAll()
	ts.Serve(ts.Handler())
	return ts
}

// codeLine is the line of a verification email that holds the code.
var codeLine = regexp.MustCompile(`(?m)^\s{2,}([A-Za-z0-9-]{4,16})\s*$`)

// CodeFrom finds the code in the text of a verification email.
func CodeFrom(text string) string {
	m := codeLine.FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

// LatestCode reads the dev mailbox at base (/dev/mailbox?format=json&to=...) and returns the
// code of the newest verification email for request id, or "" when none arrived yet.
func LatestCode(ctx context.Context, base, to, id string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/dev/mailbox?format=json&to="+url.QueryEscape(to), nil)
	if err != nil {
		return "", err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("reading the dev mailbox: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("reading the dev mailbox: %s", res.Status)
	}
	var msgs []mail.Sent
	if err := json.NewDecoder(res.Body).Decode(&msgs); err != nil {
		return "", fmt.Errorf("decoding the dev mailbox: %w", err)
	}
	for _, m := range msgs { // newest first
		if m.Kind == mail.KindVerificationCode && m.RequestID == id {
			return CodeFrom(m.Text), nil
		}
	}
	return "", nil
}

// AwaitCode polls the dev mailbox until the request's verification email arrives.
func AwaitCode(ctx context.Context, base, to, id string) (string, error) {
	for {
		code, err := LatestCode(ctx, base, to, id)
		if err != nil || code != "" {
			return code, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no verification email for request %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
