package app

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
)

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
