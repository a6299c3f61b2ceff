package connectors

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Capability names one role a connector can perform. The values are the action names used in
// connector commands on Kafka.
type Capability string

// The capabilities, one per role interface.
const (
	CapAccess     Capability = "access"
	CapErase      Capability = "erase"
	CapRectify    Capability = "rectify"
	CapRestrict   Capability = "restrict"
	CapBlockCheck Capability = "block_check"
	CapNotify     Capability = "notify"
	CapFind       Capability = "find"
	CapPurge      Capability = "purge"
)

// Sink is the streaming destination a role writes to, if any.
type Sink int

// The sinks a role may need.
const (
	NoSink Sink = iota
	RecordsSink
	SubjectsSink
)

// Role is one row of the capability table: an action, its role interface, and what serving
// it needs. Dispatch (Do), the declared-versus-implemented check (Implemented) and remote
// forwarding read it; a new action is one row plus its interface.
type Role struct {
	Capability Capability
	// Subject is whether the task must name a subject (find and purge work on criteria).
	Subject bool
	// Sink is what the role streams to.
	Sink Sink
	// Stored is whether a runner keeps the result by task key, to answer a redelivered
	// command without acting twice. A block check has no effect to protect and its answer
	// changes over time.
	Stored bool

	implements func(Connector) bool
	call       func(context.Context, Connector, Task, Sinks) (any, error)
}

// role builds a row whose interface is R.
func role[R any](c Capability, subject bool, sink Sink, stored bool, call func(context.Context, R, Task, Sinks) (any, error)) Role {
	return Role{
		Capability: c, Subject: subject, Sink: sink, Stored: stored,
		implements: func(conn Connector) bool { _, ok := conn.(R); return ok },
		call: func(ctx context.Context, conn Connector, t Task, s Sinks) (any, error) {
			return call(ctx, conn.(R), t, s)
		},
	}
}

// Roles is the capability table, in a stable order.
var Roles = []Role{
	role(CapAccess, true, RecordsSink, true, func(ctx context.Context, r Accessor, t Task, s Sinks) (any, error) {
		if s.Records == nil {
			return nil, Permanent(errors.New("access needs a record sink"))
		}
		return r.Access(ctx, t, s.Records)
	}),
	role(CapErase, true, NoSink, true, func(ctx context.Context, r Eraser, t Task, _ Sinks) (any, error) { return r.Erase(ctx, t) }),
	role(CapRectify, true, NoSink, true, func(ctx context.Context, r Rectifier, t Task, _ Sinks) (any, error) { return r.Rectify(ctx, t) }),
	role(CapRestrict, true, NoSink, true, func(ctx context.Context, r Restricter, t Task, _ Sinks) (any, error) { return r.Restrict(ctx, t) }),
	role(CapBlockCheck, true, NoSink, false, func(ctx context.Context, r BlockChecker, t Task, _ Sinks) (any, error) { return r.BlockCheck(ctx, t) }),
	role(CapNotify, true, NoSink, true, func(ctx context.Context, r Notifier, t Task, _ Sinks) (any, error) { return r.Notify(ctx, t) }),
	role(CapFind, false, SubjectsSink, true, func(ctx context.Context, r Finder, t Task, s Sinks) (any, error) {
		if s.Subjects == nil {
			return nil, Permanent(errors.New("find needs a subject sink"))
		}
		return r.Find(ctx, t, s.Subjects)
	}),
	role(CapPurge, false, NoSink, true, func(ctx context.Context, r Purger, t Task, _ Sinks) (any, error) { return r.Purge(ctx, t) }),
}

// AllCapabilities lists every capability in the order of Roles.
var AllCapabilities = func() []Capability {
	out := make([]Capability, len(Roles))
	for i, r := range Roles {
		out[i] = r.Capability
	}
	return out
}()

// RoleOf returns the row of capability c.
func RoleOf(c Capability) (Role, bool) {
	i := slices.IndexFunc(Roles, func(r Role) bool { return r.Capability == c })
	if i < 0 {
		return Role{}, false
	}
	return Roles[i], true
}

// Valid reports whether c is one of the defined capabilities.
func (c Capability) Valid() bool {
	_, ok := RoleOf(c)
	return ok
}

// Scoped is implemented by a connector whose instances serve only some of the role
// interfaces its type implements (a remote connector serves what its configuration names).
// Implemented then reports only the roles both implemented and listed.
type Scoped interface {
	Capabilities() []Capability
}

// Implemented returns the capabilities c serves: the role interfaces it implements, narrowed
// by Scoped, in the order of Roles.
func Implemented(c Connector) []Capability {
	var out []Capability
	scoped, isScoped := c.(Scoped)
	for _, r := range Roles {
		if r.implements(c) && (!isScoped || slices.Contains(scoped.Capabilities(), r.Capability)) {
			out = append(out, r.Capability)
		}
	}
	return out
}

// implemented returns the role interfaces c implements, whatever its scope.
func implemented(c Connector) []Capability {
	var out []Capability
	for _, r := range Roles {
		if r.implements(c) {
			out = append(out, r.Capability)
		}
	}
	return out
}

// ErrUnsupported is returned (wrapped in Permanent) by Do for an action the connector does
// not serve.
var ErrUnsupported = errors.New("action not supported by this connector")

// Sinks carries the streaming destinations a call may need.
type Sinks struct {
	Records  RecordSink  // for access
	Subjects SubjectSink // for find
}

// Do performs one action on c, the way a runner serves a command: it dispatches to the role
// interface and returns that role's result (a JSON-encodable struct) for the result message.
func Do(ctx context.Context, c Connector, action Capability, task Task, sinks Sinks) (any, error) {
	r, ok := RoleOf(action)
	if !ok || !slices.Contains(Implemented(c), action) {
		return nil, Permanent(fmt.Errorf("%s on connector %s: %w", action, c.Name(), ErrUnsupported))
	}
	return r.call(ctx, c, task, sinks)
}
