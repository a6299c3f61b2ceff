package mail

import (
	"errors"
	"fmt"
	"time"
)

// PermanentError is a send that will fail again if retried: the notice is incomplete, the
// address is unusable, or Mailgun refused the message (4xx other than 429).
type PermanentError struct {
	Kind Kind
	// Status is Mailgun's HTTP status, or 0 when the notice was refused before sending.
	Status int
	Err    error
}

func (e *PermanentError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("sending %s notice: mailgun refused it with HTTP %d", e.Kind, e.Status)
	}
	return fmt.Sprintf("sending %s notice: %v", e.Kind, e.Err)
}

func (e *PermanentError) Unwrap() error { return e.Err }

// TransientError is a send that may succeed later: Mailgun throttled (429) or failed (5xx), or
// the network did.
type TransientError struct {
	Kind   Kind
	Status int // 0 for network errors
	// RetryAfter is Mailgun's Retry-After, or 0 when it sent none.
	RetryAfter time.Duration
	Err        error
}

func (e *TransientError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("sending %s notice: mailgun answered HTTP %d", e.Kind, e.Status)
	}
	return fmt.Sprintf("sending %s notice: %v", e.Kind, e.Err)
}

func (e *TransientError) Unwrap() error { return e.Err }

// IsPermanent reports whether retrying the send is pointless.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfter returns how long Mailgun asked to wait before retrying, if it said.
func RetryAfter(err error) (time.Duration, bool) {
	var t *TransientError
	if errors.As(err, &t) && t.RetryAfter > 0 {
		return t.RetryAfter, true
	}
	return 0, false
}
