package slackstandin

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Page lists what was posted, newest first, as text: each message's channel, timestamp, text,
// updates and blocks, and the ephemeral messages (refusals) with their user (lethe dev's
// /dev/slack).
func (s *Server) Page() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		msgs := s.Messages()
		fmt.Fprintf(w, "Slack stand-in at %s: %d messages\n", s.URL(), len(msgs))
		for i := len(msgs) - 1; i >= 0; i-- {
			m := msgs[i]
			fmt.Fprintf(w, "\n== %s ts %s (updated %d times)\n%s\n", m.Channel, m.TS, m.Updates, m.Text)
			var blocks any
			if json.Unmarshal(m.Blocks, &blocks) == nil {
				b, _ := json.MarshalIndent(blocks, "", "  ")
				fmt.Fprintf(w, "%s\n", b)
			}
		}
		eph := s.Ephemerals()
		fmt.Fprintf(w, "\nEphemeral messages: %d\n", len(eph))
		for i := len(eph) - 1; i >= 0; i-- {
			fmt.Fprintf(w, "  to %s in %s: %s\n", eph[i].User, eph[i].Channel, eph[i].Text)
		}
	})
}
