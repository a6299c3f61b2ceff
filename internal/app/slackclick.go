package app

import (
	"fmt"
	"strings"

	"github.com/lethe-privacy/lethe/internal/config"
	"github.com/lethe-privacy/lethe/internal/slackstandin"
)

// SlackClick completes a decision for `lethe slack click` from the configuration: the signing
// secret of tenant (or of the one tenant with Slack settings), the server's /slack/interactions
// (server, or http.public_url) and, without a user, the tenant's first approver listed.
func SlackClick(cfg config.Config, tenant, server string, d slackstandin.Decision) (slackstandin.Decision, error) {
	var found *config.Tenant
	for i, t := range cfg.Tenants {
		if t.Slack == nil || (tenant != "" && t.ID != tenant) {
			continue
		}
		if found != nil {
			return d, fmt.Errorf("tenants %s and %s both have Slack settings: pass --tenant", found.ID, t.ID)
		}
		found = &cfg.Tenants[i]
	}
	if found == nil {
		return d, fmt.Errorf("no tenant %shas Slack settings (tenants[].slack)", strings.TrimSpace(tenant+" "))
	}
	d.Secret = found.Slack.SigningSecret.Value()
	if server == "" {
		server = cfg.HTTP.PublicURL
	}
	d.Endpoint = strings.TrimSuffix(server, "/") + "/slack/interactions"
	for _, a := range found.Slack.Approvers {
		if d.User == "" && len(a.Users) > 0 {
			d.User = a.Users[0]
		}
	}
	if d.User == "" {
		return d, fmt.Errorf("tenants[%s].slack lists no approver user: pass --user", found.ID)
	}
	return d, nil
}
