package app

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/sms"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
)

// DevTwilioToken is the auth token of lethe dev's Twilio stand-in.
const DevTwilioToken = "dev-twilio-auth-token"

// SeedTwilio gives the Twilio stand-in the demo salon's booking reminders, each delivered a day
// before its booking from the salon's sender, and returns how many.
func SeedTwilio(ctx context.Context, tw *twiliostandin.Server, demoDB *pgxpool.Pool, now time.Time) (int, error) {
	reminders, err := demo.Reminders(ctx, demoDB, now)
	if err != nil {
		return 0, err
	}
	for _, r := range reminders {
		tw.Add(twiliostandin.Message{From: demo.TwilioSender, To: r.Phone, Body: r.Text(), Created: r.SentAt(), Status: "delivered"})
	}
	return len(reminders), nil
}

// DevTexts counts the texts between phone and the tenant's sender that the sms connector
// instance of cfg reaches, asking Twilio (lethe dev's stand-in) through the connector's access.
func DevTexts(ctx context.Context, cfg config.Config, tenant, phone string) (int64, error) {
	in, ok := cfg.Connector("sms")
	if !ok {
		return 0, errors.New("no sms connector instance is configured")
	}
	raw, err := in.ConfigYAML()
	if err != nil {
		return 0, err
	}
	if os.Getenv(demo.TwilioTokenEnv) == "" {
		os.Setenv(demo.TwilioTokenEnv, DevTwilioToken)
	}
	c, err := connectors.Open(sms.Name, raw)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	res, err := c.(connectors.Accessor).Access(ctx, connectors.Task{Key: "lethe-demo", TenantID: tenant, Subject: connectors.Subject{Phone: phone}}, discard{})
	return res.Rows, err
}

// discard is a RecordSink that keeps nothing: DevTexts only counts.
type discard struct{}

func (discard) BeginTable(context.Context, connectors.Table) error { return nil }
func (discard) WriteRow(context.Context, []any) error              { return nil }
func (discard) EndTable(context.Context) error                     { return nil }
