package texts_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/texts"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
)

const (
	account = twiliostandin.TestAccount
	token   = twiliostandin.TestToken
	sender  = twiliostandin.TestSender
	phone   = "+15555550100"
)

// A tenant's text goes from its sender through its sms instance, and Sent finds exactly that
// text afterwards (and no other), which is how an unanswered send is settled without a second.
func TestSendAndFindATenantsText(t *testing.T) {
	srv := twiliostandin.New(account, token)
	t.Cleanup(srv.Stop)
	s := texts.New(twiliostandin.SalonConfig(t, srv))
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()

	assert.True(t, s.Enabled("salon"))
	assert.False(t, s.Enabled("studio"))
	_, found, err := s.Sent(ctx, "salon", phone, "Your code is 123456")
	require.NoError(t, err)
	assert.False(t, found, "nothing sent yet")

	sid, err := s.Send(ctx, "salon", "r1:code", phone, "Your code is 123456")
	require.NoError(t, err)
	msgs := srv.Messages(phone)
	require.Len(t, msgs, 1)
	assert.Equal(t, sender, msgs[0].From)
	assert.Equal(t, "Your code is 123456", msgs[0].Body)

	got, found, err := s.Sent(ctx, "salon", phone, "Your code is 123456")
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, sid, got)
	_, found, err = s.Sent(ctx, "salon", phone, "Your code is 654321")
	require.NoError(t, err)
	assert.False(t, found, "another body is another text")

	_, err = s.Send(ctx, "studio", "r2:code", phone, "hello")
	require.ErrorIs(t, err, texts.ErrNoSender)
	assert.True(t, connectors.IsPermanent(err))
}
