// Package shop is a small connector outside Lethe's module: a shop's customers and their
// orders, held in memory. It uses only Lethe's public packages (connectors for the contract,
// connectors/serve to be served over Kafka) and shows what a connector implements: access,
// erase and block check, idempotent by task key.
package shop

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/lethe-privacy/lethe/connectors"
)

// Name is the connector's registered name (its type in Lethe's configuration).
const Name = "shop"

// Capabilities are what Shop implements; connectors.Open holds it to them.
var Capabilities = []connectors.Capability{connectors.CapAccess, connectors.CapErase, connectors.CapBlockCheck}

func init() {
	connectors.MustRegister(connectors.Info{
		Name: Name, Description: "a shop's customers and orders, in memory (example)",
		Capabilities: Capabilities,
		NewConfig:    func() connectors.Config { return &Config{} },
		New:          func(c connectors.Config) (connectors.Connector, error) { return New(), nil },
	})
}

// Config is empty: the shop lives in memory.
type Config struct{}

// Validate has nothing to check.
func (*Config) Validate() error { return nil }

// Customer is one customer with their orders.
type Customer struct {
	ID     string
	Email  string
	Phone  string
	Name   string
	Orders []Order
}

// Order is one order; an open one is still being delivered.
type Order struct {
	ID    string
	Total float64
	Open  bool
}

// Shop is the connector. It is safe for concurrent use.
type Shop struct {
	mu        sync.Mutex
	customers []*Customer
	erased    map[string]connectors.EraseResult // by task key, so a retried erase reports it was done
}

// New returns an empty shop.
func New() *Shop { return &Shop{erased: map[string]connectors.EraseResult{}} }

// Add stores a customer.
func (s *Shop) Add(c Customer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.customers = append(s.customers, &c)
}

// Holds reports whether any customer matches the subject.
func (s *Shop) Holds(sub connectors.Subject) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.find(sub) != nil
}

// find returns the customer matching any of the subject's identifiers; s.mu must be held.
func (s *Shop) find(sub connectors.Subject) *Customer {
	for _, c := range s.customers {
		if (sub.Email != "" && c.Email == sub.Email) || (sub.Phone != "" && c.Phone == sub.Phone) ||
			(sub.CustomerID != "" && c.ID == sub.CustomerID) {
			return c
		}
	}
	return nil
}

// Name is the registered name.
func (s *Shop) Name() string { return Name }

// Check has no system to reach.
func (s *Shop) Check(context.Context) error { return nil }

// Close releases nothing.
func (s *Shop) Close() error { return nil }

var (
	customersTable = connectors.Table{Name: "customers", Columns: []connectors.Column{
		{Name: "customer_id", Category: connectors.CategoryIdentity},
		{Name: "email", Category: connectors.CategoryContact},
		{Name: "phone", Category: connectors.CategoryContact},
		{Name: "name", Category: connectors.CategoryIdentity},
	}}
	ordersTable = connectors.Table{Name: "orders", Columns: []connectors.Column{
		{Name: "order_id"}, {Name: "total", Category: connectors.CategoryFinancial}, {Name: "open"},
	}}
)

// Access streams the customer's row and their orders. A subject the shop does not know gets
// empty tables.
func (s *Shop) Access(ctx context.Context, task connectors.Task, sink connectors.RecordSink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	if task.Subject.IsZero() {
		return res, connectors.Permanent(connectors.ErrNoSubject)
	}
	s.mu.Lock()
	var c Customer
	if found := s.find(task.Subject); found != nil {
		c = *found
		c.Orders = slices.Clone(found.Orders)
	}
	s.mu.Unlock()

	stream := func(t connectors.Table, rows [][]any) error {
		if err := sink.BeginTable(ctx, t); err != nil {
			return err
		}
		for _, r := range rows {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("exporting %s: %w", t.Name, err)
			}
			if err := sink.WriteRow(ctx, r); err != nil {
				return err
			}
			res.Rows++
		}
		res.Tables++
		return sink.EndTable(ctx)
	}
	var customers, orders [][]any
	if c.ID != "" {
		customers = append(customers, []any{c.ID, c.Email, c.Phone, c.Name})
	}
	for _, o := range c.Orders {
		orders = append(orders, []any{o.ID, o.Total, o.Open})
	}
	if err := stream(customersTable, customers); err != nil {
		return res, err
	}
	return res, stream(ordersTable, orders)
}

// BlockCheck reports an open order: erasing the customer would lose the delivery address.
func (s *Shop) BlockCheck(_ context.Context, task connectors.Task) (connectors.BlockResult, error) {
	if task.Subject.IsZero() {
		return connectors.BlockResult{}, connectors.Permanent(connectors.ErrNoSubject)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return connectors.BlockResult{Blocks: blocks(s.find(task.Subject))}, nil
}

func blocks(c *Customer) []connectors.Block {
	out := []connectors.Block{}
	if c == nil {
		return out
	}
	for _, o := range c.Orders {
		if o.Open {
			return append(out, connectors.Block{Code: "open_order", Reason: "An order of yours is still being delivered."})
		}
	}
	return out
}

// Erase deletes the customer and their orders, unless an open order blocks it.
func (s *Shop) Erase(_ context.Context, task connectors.Task) (connectors.EraseResult, error) {
	if task.Subject.IsZero() {
		return connectors.EraseResult{}, connectors.Permanent(connectors.ErrNoSubject)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if done, ok := s.erased[task.Key]; ok {
		done.AlreadyApplied = true
		return done, nil
	}
	c := s.find(task.Subject)
	if b := blocks(c); len(b) > 0 {
		return connectors.EraseResult{}, connectors.Blocked(b)
	}
	res := connectors.EraseResult{Deleted: map[string]int64{}}
	if c != nil {
		res.Subjects = 1
		res.Deleted["customers"], res.Deleted["orders"] = 1, int64(len(c.Orders))
		s.customers = slices.DeleteFunc(s.customers, func(x *Customer) bool { return x == c })
	}
	s.erased[task.Key] = res
	return res, nil
}
