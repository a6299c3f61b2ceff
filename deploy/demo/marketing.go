package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The demo salon's marketing list in Mailchimp (its stand-in in lethe dev and the tests).
const (
	// MailchimpAudience is the list ID of the salon's newsletter audience.
	MailchimpAudience = "5a1045a1e5"
	// MailchimpKeyEnv holds the API key the demo's mailchimp connector instance reads.
	MailchimpKeyEnv = "LETHE_DEMO_MAILCHIMP_API_KEY"
)

// MailchimpConnectorConfig is the config of the demo tenant's mailchimp connector instance
// against the API at baseURL (a stand-in's; empty for Mailchimp itself).
func MailchimpConnectorConfig(baseURL string) []byte {
	cfg := fmt.Sprintf("api_key_env: %s\naudiences: [%s]\n", MailchimpKeyEnv, MailchimpAudience)
	if baseURL != "" {
		cfg += "base_url: " + baseURL + "\n"
	}
	return []byte(cfg)
}

// Contact is one customer on the marketing list.
type Contact struct {
	Email, FirstName, LastName, Phone string
	// OptedInAt is when the customer gave email marketing consent.
	OptedInAt time.Time
}

// MarketingList returns the customers whose email marketing consent is granted, in customer
// order: the salon's newsletter audience.
func MarketingList(ctx context.Context, db *pgxpool.Pool) ([]Contact, error) {
	rows, err := db.Query(ctx, `
		SELECT c.email, coalesce(c.first_name, ''), coalesce(c.last_name, ''), coalesce(c.phone, ''), m.changed_at
		FROM customers c
		JOIN LATERAL (SELECT granted, changed_at FROM marketing_consents
			WHERE customer_id = c.id AND channel = 'email' ORDER BY changed_at DESC, id DESC LIMIT 1) m ON m.granted
		WHERE c.email LIKE '%@%' -- an erased customer's address is a keyed hash
		ORDER BY c.id`)
	if err != nil {
		return nil, fmt.Errorf("reading the demo marketing list: %w", err)
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		var c Contact
		if err := rows.Scan(&c.Email, &c.FirstName, &c.LastName, &c.Phone, &c.OptedInAt); err != nil {
			return nil, fmt.Errorf("reading the demo marketing list: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
