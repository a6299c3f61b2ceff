package slackapp

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/lethe-privacy/lethe/internal/config"
)

// RunSocket receives tenant t's interactions over Socket Mode until ctx ends: Lethe opens the
// connection (apps.connections.open with the app-level token), so no public URL is needed.
// Each interaction is handled by Interact, as over HTTP, and acknowledged with its response;
// Slack signs nothing here, the token that opened the connection vouches for it.
func RunSocket(ctx context.Context, o Options, t config.Tenant) error {
	a := &App{o: o}
	opts := []slack.Option{slack.OptionAppLevelToken(t.Slack.AppToken.Value())}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	c := socketmode.New(slack.New(t.Slack.BotToken.Value(), opts...))
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case evt := <-c.Events:
				a.socketEvent(ctx, c, t, evt)
			}
		}
	}()
	if err := c.RunContext(ctx); err != nil && ctx.Err() == nil {
		return fmt.Errorf("tenants[%s].slack: Socket Mode: %w", t.ID, err)
	}
	return nil
}

func (a *App) socketEvent(ctx context.Context, c *socketmode.Client, t config.Tenant, evt socketmode.Event) {
	if evt.Request == nil {
		return // the client's own news: connecting, connected, hello
	}
	var resp any
	switch data := evt.Data.(type) {
	case slack.InteractionCallback:
		if r := a.Interact(ctx, []config.Tenant{t}, data); r != nil {
			resp = r
		}
	case slack.SlashCommand:
		if r := a.Command(ctx, []config.Tenant{t}, data); r != nil {
			resp = r
		}
	}
	// Every envelope is acknowledged, or Slack sends it again.
	if err := c.AckCtx(ctx, evt.Request.EnvelopeID, resp); err != nil {
		a.o.Log.Warn("acknowledging a Slack Socket Mode envelope failed", "tenant_id", t.ID, "error", err)
	}
}
