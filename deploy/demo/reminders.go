package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The demo salon's text messages through Twilio (its stand-in in lethe dev and the tests).
const (
	// TwilioAccount is the salon's Twilio account.
	TwilioAccount = "AC5a105a105a105a105a105a105a105a10"
	// TwilioSender is the number the salon's texts come from (Twilio's documented test sender).
	TwilioSender = "+15005550006"
	// TwilioTokenEnv holds the auth token the demo's sms connector instance reads.
	TwilioTokenEnv = "LETHE_DEMO_TWILIO_AUTH_TOKEN"
)

// SMSConnectorConfig is the config of the demo tenant's sms connector instance against the API
// at baseURL (a stand-in's; empty for Twilio itself).
func SMSConnectorConfig(tenant, baseURL string) []byte {
	cfg := fmt.Sprintf("account_sid: %s\nauth_token_env: %s\nsenders: {%s: {from: %q}}\n", TwilioAccount, TwilioTokenEnv, tenant, TwilioSender)
	if baseURL != "" {
		cfg += "base_url: " + baseURL + "\n"
	}
	return []byte(cfg)
}

// Reminder is the text a booking's customer got the day before it.
type Reminder struct {
	Phone, Service string
	StartsAt       time.Time
}

// SentAt is when the reminder went out: a day before the booking.
func (r Reminder) SentAt() time.Time { return r.StartsAt.Add(-24 * time.Hour) }

// Text is the reminder's body.
func (r Reminder) Text() string {
	return fmt.Sprintf("Salon Example: a reminder of your %s on %s. Reply STOP to opt out.", r.Service, r.StartsAt.UTC().Format("Mon 2 Jan at 15:04 UTC"))
}

// Reminders returns the reminder of every booking that is not cancelled and whose reminder
// was due by now, for customers with a phone number, in booking order.
func Reminders(ctx context.Context, db *pgxpool.Pool, now time.Time) ([]Reminder, error) {
	rows, err := db.Query(ctx, `
		SELECT c.phone, s.name, b.starts_at
		FROM bookings b JOIN customers c ON c.id = b.customer_id JOIN services s ON s.id = b.service_id
		WHERE b.status <> 'cancelled' AND c.phone LIKE '+%' AND b.starts_at - interval '1 day' <= $1
		ORDER BY b.starts_at, b.id`, now)
	if err != nil {
		return nil, fmt.Errorf("reading the demo booking reminders: %w", err)
	}
	defer rows.Close()
	var out []Reminder
	for rows.Next() {
		var r Reminder
		if err := rows.Scan(&r.Phone, &r.Service, &r.StartsAt); err != nil {
			return nil, fmt.Errorf("reading the demo booking reminders: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
