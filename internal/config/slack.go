package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Slack is a tenant's Slack app: where its approval messages go and who may decide from them.
type Slack struct {
	// BotToken (xoxb-...) posts and updates messages and opens modals.
	BotToken Secret `yaml:"bot_token"`
	// SigningSecret verifies that a request to /slack/interactions comes from Slack.
	SigningSecret Secret `yaml:"signing_secret"`
	// Mode is how Slack's interactions reach Lethe: http (default; Slack posts to
	// /slack/interactions) or socket (Socket Mode: Lethe connects out to Slack, no public URL).
	Mode string `yaml:"mode,omitempty"`
	// AppToken (xapp-..., scope connections:write) opens Socket Mode connections.
	AppToken Secret `yaml:"app_token,omitempty"`
	// ApprovalChannel is the channel ID (C...) that approval messages are posted to.
	ApprovalChannel string `yaml:"approval_channel"`
	// Approvers say who may decide which request types; a user allowed by any entry that
	// covers the type may decide.
	Approvers []SlackApprovers `yaml:"approvers"`
	// DPOUser is the DPO's Slack user ID (U...): deadline reminders, overdue escalations and
	// breach clock alarms, posted to the channel, are also sent to them directly. Optional.
	DPOUser string `yaml:"dpo_user,omitempty"`
}

// SlackApprovers are the Slack users allowed to decide requests of some types.
type SlackApprovers struct {
	// Types are the request types covered; empty means every type.
	Types []string `yaml:"types,omitempty"`
	// Users are Slack user IDs (U... or W...).
	Users []string `yaml:"users,omitempty"`
	// Group is a Slack user group ID (S...) whose members may decide.
	Group string `yaml:"group,omitempty"`
}

// SlackAPI is where Lethe reaches Slack's Web API for every tenant.
type SlackAPI struct {
	// APIURL is Slack's Web API base (default https://slack.com/api/); lethe dev and tests point
	// it at the local stand-in.
	APIURL string `yaml:"api_url"`
}

var (
	slackChannel = regexp.MustCompile(`^[CG][A-Z0-9]{2,}$`)
	slackUser    = regexp.MustCompile(`^[UW][A-Z0-9]{2,}$`)
	slackGroup   = regexp.MustCompile(`^S[A-Z0-9]{2,}$`)
)

// AnySlack says whether some tenant has Slack settings.
func (c *Config) AnySlack() bool {
	return slices.ContainsFunc(c.Tenants, func(t Tenant) bool { return t.Slack != nil })
}

// ApproversOf returns the Slack user IDs and user groups allowed to decide a request of type typ.
func (s *Slack) ApproversOf(typ string) (users, groups []string) {
	for _, a := range s.Approvers {
		if len(a.Types) > 0 && !slices.Contains(a.Types, typ) {
			continue
		}
		users = append(users, a.Users...)
		if a.Group != "" {
			groups = append(groups, a.Group)
		}
	}
	return users, groups
}

func (s *Slack) resolve(tenant string, lookup func(string) (string, bool)) error {
	v, err := resolve("tenants["+tenant+"].slack.bot_token", s.BotToken, lookup, true)
	if err != nil {
		return err
	}
	s.BotToken.value = v
	if v, err = resolve("tenants["+tenant+"].slack.signing_secret", s.SigningSecret, lookup, true); err != nil {
		return err
	}
	s.SigningSecret.value = v
	if v, err = resolve("tenants["+tenant+"].slack.app_token", s.AppToken, lookup, false); err != nil {
		return err
	}
	s.AppToken.value = v
	return nil
}

// Socket says whether the tenant's interactions come over Socket Mode.
func (s *Slack) Socket() bool { return s.Mode == "socket" }

func (s *Slack) validate(tenant string) error {
	at := "tenants[" + tenant + "].slack"
	// The secrets are checked once resolved (resolve requires them).
	if s.BotToken.value != "" && !strings.HasPrefix(s.BotToken.value, "xoxb-") {
		return fmt.Errorf("%s.bot_token: is not a bot token (xoxb-...); copy it from the app's OAuth & Permissions page", at)
	}
	if s.SigningSecret.value != "" && len(s.SigningSecret.value) < 16 {
		return fmt.Errorf("%s.signing_secret: is shorter than 16 characters; copy it from the app's Basic Information page", at)
	}
	switch {
	case s.Mode != "" && s.Mode != "http" && s.Mode != "socket":
		return fmt.Errorf("%s.mode: %q must be http or socket", at, s.Mode)
	case s.Socket() && s.AppToken.value == "":
		return fmt.Errorf("%s.app_token: Socket Mode needs an app-level token (xapp-...) with connections:write; create it on the app's Basic Information page", at)
	case s.AppToken.value != "" && !strings.HasPrefix(s.AppToken.value, "xapp-"):
		return fmt.Errorf("%s.app_token: is not an app-level token (xapp-...); create it on the app's Basic Information page", at)
	}
	if !slackChannel.MatchString(s.ApprovalChannel) {
		return fmt.Errorf("%s.approval_channel: %q is not a channel ID such as C0123456789 (the channel's details show it)", at, s.ApprovalChannel)
	}
	if s.DPOUser != "" && !slackUser.MatchString(s.DPOUser) {
		return fmt.Errorf("%s.dpo_user: %q is not a Slack user ID such as U0123456789 (the DPO's profile shows it)", at, s.DPOUser)
	}
	if len(s.Approvers) == 0 {
		return fmt.Errorf("%s.approvers: nobody may decide from Slack; list user IDs or a user group", at)
	}
	for i, a := range s.Approvers {
		for _, t := range a.Types {
			if !slices.Contains(RequestTypes, t) {
				return fmt.Errorf("%s.approvers[%d].types: %q must be one of %s", at, i, t, strings.Join(RequestTypes, ", "))
			}
		}
		for _, u := range a.Users {
			if !slackUser.MatchString(u) {
				return fmt.Errorf("%s.approvers[%d].users: %q is not a Slack user ID such as U0123456789", at, i, u)
			}
		}
		if a.Group != "" && !slackGroup.MatchString(a.Group) {
			return fmt.Errorf("%s.approvers[%d].group: %q is not a user group ID such as S0123456789", at, i, a.Group)
		}
		if len(a.Users) == 0 && a.Group == "" {
			return fmt.Errorf("%s.approvers[%d]: names neither users nor a group", at, i)
		}
	}
	return nil
}

func (s SlackAPI) validate() error {
	if s.APIURL == "" {
		return nil
	}
	if u, err := url.Parse(s.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s: %q is not an http(s) URL", Setting("slack.api_url"), s.APIURL)
	}
	return nil
}
