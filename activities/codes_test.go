package activities_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/internal/texts"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"

	_ "github.com/lethe-privacy/lethe/connectors/sms" // the instance texts.Sender opens
)

const (
	twilioAccount = twiliostandin.TestAccount
	twilioToken   = twiliostandin.TestToken
	twilioSender  = twiliostandin.TestSender
)

// textingActivities are activities whose salon texts through an sms instance on tw.
func textingActivities(t *testing.T, tw *twiliostandin.Server) *activities.Activities {
	t.Helper()
	a, _, _ := newActivities(t)
	cfg := twiliostandin.SalonConfig(t, tw)
	a.Texts = texts.New(cfg)
	t.Cleanup(func() { _ = a.Texts.Close() })
	a.Tenants = map[string]config.Tenant{"salon": cfg.Tenants[0]}
	a.Codes = &identity.Codes{Pool: a.Store.Pool, Key: []byte("activities-test-signing-key")}
	return a
}

// phoneOnly adds a request waiting for identity whose subject gave only phone.
func phoneOnly(t *testing.T, a *activities.Activities, id, phone string) {
	t.Helper()
	ctx := context.Background()
	_, err := a.Store.Pool.Exec(ctx, `INSERT INTO requests (id, tenant_id, type, status, regime, received_at) VALUES ($1, 'salon', 'access', 'identity_pending', 'gdpr', now())`, id)
	require.NoError(t, err)
	_, err = a.Store.Pool.Exec(ctx, `INSERT INTO request_subjects (request_id, tenant_id, phone) VALUES ($1, 'salon', $2)`, id, phone)
	require.NoError(t, err)
}

// A code texted through Twilio is classified as Temporal should retry it: Twilio's outage is
// retried after its Retry-After and stores no code; an invalid number is permanent, naming
// Twilio's code and not the number; the text that goes is stored with channel sms and recorded
// with Twilio's SID only.
func TestTextedCodeErrorsAreClassifiedForRetries(t *testing.T) {
	tw := twiliostandin.New(twilioAccount, twilioToken)
	t.Cleanup(tw.Stop)
	a := textingActivities(t, tw)
	ctx := context.Background()
	const phone = "+4915112345678"
	phoneOnly(t, a, "r1", phone)
	n := activities.Notice{Key: "r1:code", RequestID: "r1", TenantID: "salon"}

	tw.Unavailable(1, 2*time.Second)
	err := a.IssueVerificationCode(ctx, n)
	var app *temporal.ApplicationError
	require.True(t, errors.As(err, &app), "got %v", err)
	assert.False(t, app.NonRetryable(), "Twilio's 503 is retried")
	assert.Equal(t, 2*time.Second, app.NextRetryDelay(), "after Twilio's Retry-After")
	_, sent, err := a.Codes.Sent(ctx, "r1")
	require.NoError(t, err)
	assert.False(t, sent, "no code stored for a text that did not go")

	require.NoError(t, a.IssueVerificationCode(ctx, n))
	msgs := tw.Messages(phone)
	require.Len(t, msgs, 1)
	assert.Equal(t, twilioSender, msgs[0].From)
	assert.Regexp(t, `^Salon Example: your verification code is \d{6}\. It expires in 15 minutes\. If you did not ask for it, ignore this text\.$`, msgs[0].Body)
	ch, sent, err := a.Codes.Sent(ctx, "r1")
	require.NoError(t, err)
	assert.True(t, sent)
	assert.Equal(t, identity.ChannelSMS, ch)
	var detail map[string]any
	require.NoError(t, a.Store.Pool.QueryRow(ctx, `SELECT detail FROM audit_events WHERE request_id = 'r1' AND action = 'subject.notified'`).Scan(&detail))
	assert.Equal(t, map[string]any{"kind": "verification_code", "sent": true, "channel": "sms", "message_id": msgs[0].SID}, detail)

	phoneOnly(t, a, "r2", "+0000") // not E.164: Twilio answers 21211
	err = a.IssueVerificationCode(ctx, activities.Notice{Key: "r2:code", RequestID: "r2", TenantID: "salon"})
	require.True(t, errors.As(err, &app), "got %v", err)
	assert.True(t, app.NonRetryable(), "an invalid number is permanent")
	assert.Contains(t, app.Message(), "code 21211")
	assert.NotContains(t, fmt.Sprint(err), "+0000")

	// Asked by the subject: a text to a number that replied STOP is refused for its number.
	_, err = tw.Receive(twilioAccount, phone, twilioSender, "STOP")
	require.NoError(t, err)
	_, err = a.ResendVerificationCode(ctx, activities.CodeRequest{Key: "r1:code:1", RequestID: "r1", TenantID: "salon", At: time.Now(), Channel: "sms"})
	require.True(t, errors.As(err, &app), "got %v", err)
	assert.Equal(t, activities.ErrTextRefused, app.Type())
	assert.Contains(t, app.Message(), "code 21610")
	assert.NotContains(t, app.Message(), phone)
	_, err = a.ResendVerificationCode(ctx, activities.CodeRequest{Key: "r1:code:2", RequestID: "r1", TenantID: "salon", At: time.Now(), Channel: "email"})
	require.True(t, errors.As(err, &app), "got %v", err)
	assert.Equal(t, activities.ErrNoEmail, app.Type(), "no email to send it to")
}
