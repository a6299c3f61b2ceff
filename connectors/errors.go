package connectors

import (
	"errors"
	"strings"
	"time"
)

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix; the runner reports it as a failed
// result with permanent set, and Temporal does not retry it. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or any error it wraps, was marked with Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as transient and asks that the next attempt wait at least d (a
// provider's Retry-After, a lock held elsewhere). RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, delay: d}
}

// RetryDelay returns the delay requested with RetryAfter, if any.
func RetryDelay(err error) (time.Duration, bool) {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.delay, true
	}
	return 0, false
}

// BlockedError is the reason an erasure was refused: the subject is blocked. It is always
// returned wrapped in Permanent (by Blocked): the request waits and re-checks, with a new
// attempt, rather than retrying this one.
type BlockedError struct {
	Blocks []Block
}

func (e *BlockedError) Error() string {
	codes := make([]string, len(e.Blocks))
	for i, b := range e.Blocks {
		codes[i] = b.Code
	}
	return "subject is blocked from erasure: " + strings.Join(codes, ", ")
}

// Blocked returns the permanent error an Eraser returns for a blocked subject. The message
// holds only the block codes; the readable reasons are in the BlockedError.
func Blocked(blocks []Block) error {
	return Permanent(&BlockedError{Blocks: blocks})
}

// BlocksOf returns the blocks carried by err, if it is (or wraps) a BlockedError.
func BlocksOf(err error) ([]Block, bool) {
	var b *BlockedError
	if errors.As(err, &b) {
		return b.Blocks, true
	}
	return nil, false
}

type deferredError struct{ err error }

func (e *deferredError) Error() string { return e.err.Error() }
func (e *deferredError) Unwrap() error { return e.err }

// Deferred says the system accepted the task and will give its answer later by another path
// (a webhook endpoint that answered 202 and calls back). The runner then publishes progress and
// no result; the answer, when it comes, completes the step. Deferred(nil) is nil.
func Deferred(err error) error {
	if err == nil {
		return nil
	}
	return &deferredError{err: err}
}

// IsDeferred reports whether err, or any error it wraps, was marked with Deferred.
func IsDeferred(err error) bool {
	var d *deferredError
	return errors.As(err, &d)
}

// Deferrer is implemented by a connector that may answer later (Deferred). When Defers is true
// its runner keeps each command from before the call until its answer is published, so an
// answer that arrives before the call returns still finds its command.
type Deferrer interface {
	Defers() bool
}
