//go:build lethe_subject

package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lethe-privacy/lethe/internal/requests"
)

// codeProblem says what went wrong with a code, in words the subject understands. Unknown
// ids read like a wrong code, so the page never confirms that a request exists.
func codeProblem(err error) (msg string, status int, known bool) {
	switch {
	case errors.Is(err, requests.ErrCodeExpired):
		return "This code has expired. Ask for a new code below", http.StatusUnprocessableEntity, true
	case errors.Is(err, requests.ErrTooManyAttempts):
		return "You have entered a wrong code too many times. Ask for a new code below", http.StatusTooManyRequests, true
	case errors.Is(err, requests.ErrCodeWrong), errors.Is(err, requests.ErrNotFound):
		return "That code is not right. Check the latest email from us and try again", http.StatusUnprocessableEntity, true
	case errors.Is(err, requests.ErrAlreadyVerified):
		return "This request is already confirmed. Open it in the browser where you entered the code", http.StatusConflict, true
	}
	return "", 0, false
}

func resendProblem(err error) (msg string, status int, known bool) {
	switch {
	case errors.Is(err, requests.ErrNotFound):
		// As if sent: the page never confirms that a request exists.
		return "", 0, false
	case errors.Is(err, requests.ErrTooManyAttempts):
		return "We have sent several codes already. Wait a few minutes, then ask again", http.StatusTooManyRequests, true
	case errors.Is(err, requests.ErrAlreadyVerified):
		return "This request is already confirmed. Open it in the browser where you entered the code", http.StatusConflict, true
	}
	return "", 0, false
}

func noExport(err error) bool { return errors.Is(err, requests.ErrNotFound) }

// replaceFold replaces old in s ignoring case.
func replaceFold(s, old, repl string) string {
	lower, lold := strings.ToLower(s), strings.ToLower(old)
	var b strings.Builder
	for {
		i := strings.Index(lower, lold)
		if i < 0 || len(lower) != len(s) {
			b.WriteString(s)
			return strings.ReplaceAll(b.String(), old, repl)
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
}
