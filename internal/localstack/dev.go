package localstack

import (
	"context"
	"errors"
	"io"
	"path/filepath"
)

// DevOptions place the services of `lethe dev` on this machine.
type DevOptions struct {
	// Dir keeps their state between runs: the PostgreSQL cluster and Temporal's history.
	Dir         string
	TemporalBin string
	// Ports on 127.0.0.1.
	PostgresPort, TemporalPort, UIPort, KafkaPort int
	// Brokers is an external Kafka cluster to use instead of the in-process broker.
	Brokers string
	// Databases are created in the cluster if missing.
	Databases []string
	// Log receives the services' own output; nil discards it.
	Log io.Writer
	// Step reports each service as it starts.
	Step func(format string, args ...any)
}

// Dev is the running services of `lethe dev`.
type Dev struct {
	Postgres *Postgres
	Temporal *Temporal
	// Brokers is the Kafka bootstrap address, and Kafka says which broker it is for people.
	Brokers, Kafka string
	stops          []func() error
}

// StartDev starts PostgreSQL, the Temporal dev server and, unless o.Brokers names a cluster,
// the in-process Kafka broker. On an error whatever started is stopped again.
func StartDev(ctx context.Context, o DevOptions) (_ *Dev, err error) {
	d := &Dev{Brokers: o.Brokers, Kafka: "external cluster " + o.Brokers}
	defer func() {
		if err != nil {
			_ = d.Stop()
		}
	}()
	o.Step("starting PostgreSQL (data in %s)", filepath.Join(o.Dir, "postgres"))
	if d.Postgres, err = StartPostgres(ctx, PostgresOptions{DataDir: filepath.Join(o.Dir, "postgres"), Port: o.PostgresPort, Log: o.Log}); err != nil {
		return nil, err
	}
	d.stops = append(d.stops, d.Postgres.Stop)
	for _, db := range o.Databases {
		if err := d.Postgres.EnsureDatabase(ctx, db); err != nil {
			return nil, err
		}
	}
	o.Step("starting the Temporal dev server")
	if d.Temporal, err = StartTemporal(ctx, TemporalOptions{
		Binary: o.TemporalBin, DBFile: filepath.Join(o.Dir, "temporal.db"),
		Port: o.TemporalPort, UIPort: o.UIPort, Namespace: "default", Log: o.Log,
	}); err != nil {
		return nil, err
	}
	d.stops = append(d.stops, d.Temporal.Stop)
	if d.Brokers == "" {
		o.Step("starting the in-process Kafka broker")
		k, err := StartKfake(KfakeOptions{Port: o.KafkaPort})
		if err != nil {
			return nil, err
		}
		d.stops = append(d.stops, k.Stop)
		d.Brokers = k.Brokers()[0]
		d.Kafka = "in-process broker " + d.Brokers
	}
	return d, nil
}

// Stop stops the services, the last started first.
func (d *Dev) Stop() error {
	var errs []error
	for i := len(d.stops) - 1; i >= 0; i-- {
		errs = append(errs, d.stops[i]())
	}
	d.stops = nil
	return errors.Join(errs...)
}
