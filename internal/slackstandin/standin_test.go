package slackstandin_test

import (
	"testing"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/internal/slackstandin"
)

// CheckSent sees every body Lethe sent, an update too, and names the one showing an address.
func TestCheckSentFindsAnUnmaskedAddressInAnyVersion(t *testing.T) {
	srv := slackstandin.New()
	t.Cleanup(srv.Stop)
	api := slack.New("xoxb-test", slack.OptionAPIURL(srv.URL()))
	section := func(text string) slack.MsgOption {
		return slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil))
	}
	ch, ts, err := api.PostMessage("C1", slack.MsgOptionText("Erasure for h***@example.com", false), section("h***@example.com"))
	require.NoError(t, err)
	require.NoError(t, srv.CheckSent())

	_, _, _, err = api.UpdateMessage(ch, ts, slack.MsgOptionText("decided", false), section("Subject: hana@example.com"))
	require.NoError(t, err)
	_, _, _, err = api.UpdateMessage(ch, ts, slack.MsgOptionText("decided", false), section("h***@example.com"))
	require.NoError(t, err)
	err = srv.CheckSent()
	require.Error(t, err, "the address was shown in an earlier version, though the last one masks it")
	assert.Contains(t, err.Error(), "chat.update #2")
	assert.NotContains(t, err.Error(), "hana@", "the guard's own message names no address")
}
