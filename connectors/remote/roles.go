package remote

import (
	"context"

	"github.com/lethe-privacy/lethe/connectors"
)

//go:generate go run gen.go

// One small type per role interface. wrap (roles_gen.go) embeds those of the declared
// capabilities next to the client, so the returned value implements those roles and no others.
type (
	accessor     struct{ c *client }
	eraser       struct{ c *client }
	rectifier    struct{ c *client }
	restricter   struct{ c *client }
	blockChecker struct{ c *client }
	notifier     struct{ c *client }
	purger       struct{ c *client }
)

// roles lists the capabilities in the bit order wrap uses.
var roles = []connectors.Capability{
	connectors.CapAccess, connectors.CapErase, connectors.CapRectify, connectors.CapRestrict,
	connectors.CapBlockCheck, connectors.CapNotify, connectors.CapPurge,
}

func (r accessor) Access(ctx context.Context, t connectors.Task, s connectors.RecordSink) (connectors.AccessResult, error) {
	return r.c.access(ctx, t, s)
}

func (r eraser) Erase(ctx context.Context, t connectors.Task) (connectors.EraseResult, error) {
	return r.c.erase(ctx, t)
}

func (r rectifier) Rectify(ctx context.Context, t connectors.Task) (connectors.RectifyResult, error) {
	return r.c.rectify(ctx, t)
}

func (r restricter) Restrict(ctx context.Context, t connectors.Task) (connectors.RestrictResult, error) {
	return r.c.restrict(ctx, t)
}

func (r blockChecker) BlockCheck(ctx context.Context, t connectors.Task) (connectors.BlockResult, error) {
	return r.c.blockCheck(ctx, t)
}

func (r notifier) Notify(ctx context.Context, t connectors.Task) (connectors.NotifyResult, error) {
	return r.c.notify(ctx, t)
}

func (r purger) Purge(ctx context.Context, t connectors.Task) (connectors.PurgeResult, error) {
	return r.c.purge(ctx, t)
}

// mask sets bit i for each declared capability roles[i].
func mask(caps []connectors.Capability) int {
	m := 0
	for i, r := range roles {
		for _, c := range caps {
			if c == r {
				m |= 1 << i
			}
		}
	}
	return m
}
