package slackstandin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Interaction is a request to an app's /slack/interactions as Slack sends it: the payload form
// signed with the app's signing secret at the given time (v0, HMAC-SHA256 of "v0:ts:body").
func Interaction(endpoint, secret string, payload any, at time.Time) (*http.Request, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return Signed(endpoint, secret, "payload="+url.QueryEscape(string(raw)), at)
}

// Command is a slash command as Slack sends it to an app's /slack/commands: user in channel
// typing command text (such as "/privacy status R-1"), signed like Interaction.
func Command(endpoint, secret, user, channel, command, text string, at time.Time) (*http.Request, error) {
	form := url.Values{"command": {command}, "text": {text}, "user_id": {user}, "channel_id": {channel}, "trigger_id": {"T-" + user}}
	return Signed(endpoint, secret, form.Encode(), at)
}

// Signed is a form body posted to endpoint, signed with secret at the given time.
func Signed(endpoint, secret, body string, at time.Time) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	stamp := strconv.FormatInt(at.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + stamp + ":" + body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Slack-Request-Timestamp", stamp)
	req.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return req, nil
}

// Click is the block_actions payload of user clicking the button actionID (value value) in
// block blockID of a message in channel.
func Click(user, channel, blockID, actionID, value string) map[string]any {
	return map[string]any{
		"type": "block_actions", "trigger_id": "T-" + user, "user": map[string]any{"id": user},
		"channel": map[string]any{"id": channel},
		"actions": []any{map[string]any{"type": "button", "action_id": actionID, "block_id": blockID, "value": value}},
	}
}

// Submit is the view_submission payload of user submitting a modal (callbackID, with
// privateMetadata) whose one input (blockID, actionID) holds text.
func Submit(user, callbackID, privateMetadata, blockID, actionID, text string) map[string]any {
	return map[string]any{
		"type": "view_submission", "user": map[string]any{"id": user},
		"view": map[string]any{"callback_id": callbackID, "private_metadata": privateMetadata, "state": map[string]any{"values": map[string]any{
			blockID: map[string]any{actionID: map[string]any{"type": "plain_text_input", "value": text}},
		}}},
	}
}
