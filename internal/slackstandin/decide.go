package slackstandin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lethe-privacy/lethe/internal/slackmsg"
)

// Decision is a click on an approval message as `lethe slack click` makes it.
type Decision struct {
	// Endpoint is the app's /slack/interactions URL; Secret is the tenant's signing secret.
	Endpoint, Secret string
	RequestID, User  string
	// Action is approve or deny; a deny is the deny modal submitted with Reason.
	Action, Reason string
}

// Decide posts the signed interaction a Slack user's decision sends: an approve click, or the
// deny modal's submission (the click that opens it decides nothing).
func Decide(ctx context.Context, d Decision) error {
	var payload map[string]any
	switch d.Action {
	case "approve":
		payload = Click(d.User, "", slackmsg.BlockDecide, slackmsg.ActionApprove, d.RequestID)
	case "deny":
		if strings.TrimSpace(d.Reason) == "" {
			return fmt.Errorf("a denial needs --reason: the subject is told it")
		}
		payload = Submit(d.User, slackmsg.CallbackDeny, d.RequestID, slackmsg.BlockText, slackmsg.ActionText, d.Reason)
	default:
		return fmt.Errorf("%q is neither approve nor deny", d.Action)
	}
	req, err := Interaction(d.Endpoint, d.Secret, payload, time.Now())
	if err != nil {
		return fmt.Errorf("building the interaction: %w", err)
	}
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("posting to %s: %w", d.Endpoint, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s: %s", d.Endpoint, res.Status, strings.TrimSpace(string(body)))
	}
	// A modal's refusal comes back as response_action errors, with the reason shown.
	if strings.Contains(string(body), `"response_action"`) {
		return fmt.Errorf("refused: %s", strings.TrimSpace(string(body)))
	}
	return nil
}
