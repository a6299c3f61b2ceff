package identity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/identity"
)

// A text goes only where the subject has a phone and the tenant texts; with nothing asked it
// is chosen only when there is no email address; a channel asked for is never swapped for
// the other, so the subject learns why it cannot be used.
func TestChannelRule(t *testing.T) {
	all := identity.Reach{Email: true, Phone: true, Texts: true}
	for _, c := range []struct {
		name  string
		asked identity.Channel
		reach identity.Reach
		want  identity.Channel
		err   error
	}{
		{"email and phone: email as before", "", all, identity.ChannelEmail, nil},
		{"phone only, tenant texts", "", identity.Reach{Phone: true, Texts: true}, identity.ChannelSMS, nil},
		{"phone only, tenant does not text", "", identity.Reach{Phone: true}, "", identity.ErrNoEmail},
		{"nothing to reach", "", identity.Reach{Texts: true}, "", identity.ErrNoEmail},
		{"text asked", identity.ChannelSMS, all, identity.ChannelSMS, nil},
		{"text asked, no phone", identity.ChannelSMS, identity.Reach{Email: true, Texts: true}, "", identity.ErrNoPhone},
		{"text asked, tenant does not text", identity.ChannelSMS, identity.Reach{Email: true, Phone: true}, "", identity.ErrNoTexts},
		{"email asked on a phone-only request", identity.ChannelEmail, identity.Reach{Phone: true, Texts: true}, "", identity.ErrNoEmail},
		{"email asked", identity.ChannelEmail, all, identity.ChannelEmail, nil},
		{"unknown channel", "fax", all, "", identity.ErrNoChannel},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := identity.Choose(c.asked, c.reach)
			if c.err != nil {
				require.ErrorIs(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

// An emailed code proves the email address by email_code, a texted one the phone by sms_code.
func TestChannelProvesItsIdentifier(t *testing.T) {
	assert.Equal(t, "email", identity.ChannelEmail.Identifier())
	assert.Equal(t, "email_code", identity.ChannelEmail.Method())
	assert.Equal(t, "phone", identity.ChannelSMS.Identifier())
	assert.Equal(t, "sms_code", identity.ChannelSMS.Method())

	for in, want := range map[string]identity.Channel{"": "", "email": identity.ChannelEmail, " SMS ": identity.ChannelSMS} {
		got, err := identity.ParseChannel(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	_, err := identity.ParseChannel("phone")
	require.ErrorIs(t, err, identity.ErrNoChannel)
}

// Checking a code says which channel it went by, so the caller proves exactly that; a text
// code replaces an emailed one (the email code stops working) and the other way round, and the
// hour's limit counts both channels.
func TestCodeKeepsItsChannel(t *testing.T) {
	codes, _, pool := newCodes(t)
	codes.MaxIssuesPerHour = 3
	ctx := context.Background()
	addRequest(t, pool, "r1", "identity_pending")

	_, ok, err := codes.Sent(ctx, "r1")
	require.NoError(t, err)
	assert.False(t, ok, "no code sent yet")

	emailed, _, err := issueBy(codes, ctx, "r1", identity.ChannelEmail)
	require.NoError(t, err)
	texted, _, err := issueBy(codes, ctx, "r1", identity.ChannelSMS)
	require.NoError(t, err)
	ch, ok, err := codes.Sent(ctx, "r1")
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, identity.ChannelSMS, ch)

	if emailed != texted {
		_, err = codes.Check(ctx, "r1", emailed)
		require.ErrorIs(t, err, identity.ErrWrongCode, "the emailed code works after a text code was sent")
	}
	ch, err = codes.Check(ctx, "r1", texted)
	require.NoError(t, err)
	assert.Equal(t, identity.ChannelSMS, ch, "a texted code proves the phone")

	addRequest(t, pool, "r2", "identity_pending")
	texted, _, err = issueBy(codes, ctx, "r2", identity.ChannelSMS)
	require.NoError(t, err)
	emailed, _, err = issueBy(codes, ctx, "r2", identity.ChannelEmail)
	require.NoError(t, err)
	if emailed != texted {
		_, err = codes.Check(ctx, "r2", texted)
		require.ErrorIs(t, err, identity.ErrWrongCode, "the texted code works after an email code was sent")
	}
	_, _, err = issueBy(codes, ctx, "r2", identity.ChannelSMS)
	require.NoError(t, err)
	_, _, err = issueBy(codes, ctx, "r2", identity.ChannelEmail)
	require.ErrorIs(t, err, identity.ErrTooManyCodes, "the fourth code of the hour, over both channels")

	_, _, err = issueBy(codes, ctx, "r2", "fax")
	require.True(t, errors.Is(err, identity.ErrNoChannel), "got %v", err)
}
