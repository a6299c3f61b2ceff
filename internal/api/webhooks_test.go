package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/api"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

const webhookKey = "key-webhook-signing-0123456789"

func signedWebhook(key string, ts time.Time, token, event, requestID string) []byte {
	stamp := fmt.Sprint(ts.Unix())
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(stamp + token))
	return []byte(fmt.Sprintf(`{"signature":{"timestamp":%q,"token":%q,"signature":%q},
		"event-data":{"event":%q,"id":"ev-%s","timestamp":%d,"tags":["completion"],
		"user-variables":{"lethe-request-id":%q},"message":{"headers":{"message-id":"<m1@mg.example.com>"}}}}`,
		stamp, token, hex.EncodeToString(m.Sum(nil)), event, token, ts.Unix(), requestID))
}

func TestMailgunWebhookIsVerifiedAndAudited(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, testenv.PostgresURL(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at) VALUES ('R-1', 'salon', 'access', 'completed', 'gdpr', now())`); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	h := &api.MailgunWebhook{SigningKey: webhookKey, Pool: s.Pool, Log: slog.Default(), Now: func() time.Time { return now }}
	post := func(body []byte) int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/webhooks/mailgun", bytes.NewReader(body)))
		return rec.Code
	}
	cases := []struct {
		name string
		body []byte
		want int
	}{
		{"delivered", signedWebhook(webhookKey, now, "tok-1", "delivered", "R-1"), 200},
		{"replayed", signedWebhook(webhookKey, now, "tok-1", "delivered", "R-1"), 403},
		{"forged", signedWebhook("another-key-0123456789abcdef", now, "tok-2", "delivered", "R-1"), 403},
		{"stale", signedWebhook(webhookKey, now.Add(-time.Hour), "tok-3", "delivered", "R-1"), 403},
		{"not a webhook", []byte(`{"hello":`), 400},
		{"failed", signedWebhook(webhookKey, now, "tok-4", "failed", "R-1"), 200},
	}
	for _, c := range cases {
		if got := post(c.body); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	var actions []string
	rows, _ := s.Pool.Query(ctx, `SELECT action FROM audit_events WHERE request_id = 'R-1' ORDER BY id`)
	for rows.Next() {
		var a string
		_ = rows.Scan(&a)
		actions = append(actions, a)
	}
	if fmt.Sprint(actions) != "[mail.delivered mail.failed]" {
		t.Fatalf("audit trail %v, want the delivered and failed events once each", actions)
	}
}
