package slackstandin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/slack-go/slack"
)

// socketMode is the stand-in's side of Socket Mode, as slack-go's socketmode client speaks it:
// apps.connections.open hands out a WebSocket URL, the connection starts with a hello, each
// request is an envelope (envelope_id, type, payload) and the app answers with an ack carrying
// the same envelope_id and, for an interaction, its response payload.
type socketMode struct {
	mu        sync.Mutex
	ws        *httptest.Server
	conn      *websocket.Conn
	seq       int
	connected chan struct{}
	acks      map[string]chan json.RawMessage
}

// openConnection serves apps.connections.open. The WebSocket has a server of its own, since
// slacktest's handlers cannot hand over their connection.
func (s *Server) openConnection(w http.ResponseWriter, _ *http.Request) {
	sm := &s.socket
	sm.mu.Lock()
	if sm.ws == nil {
		sm.ws = httptest.NewServer(http.HandlerFunc(s.socketConn))
	}
	url := "ws" + strings.TrimPrefix(sm.ws.URL, "http")
	sm.mu.Unlock()
	reply(w, map[string]any{"ok": true, "url": url})
}

// stop closes the WebSocket server, if one was opened.
func (sm *socketMode) stop() {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	if sm.ws != nil {
		sm.ws.CloseClientConnections()
		sm.ws.Close()
	}
}

func (s *Server) socketConn(w http.ResponseWriter, r *http.Request) {
	// Slack's clients send no Origin of this host.
	c, err := (&websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	sm := &s.socket
	if err := c.WriteJSON(map[string]any{"type": "hello", "num_connections": 1}); err != nil {
		return
	}
	sm.mu.Lock()
	sm.conn = c
	select {
	case <-sm.connected:
	default:
		close(sm.connected)
	}
	sm.mu.Unlock()
	for {
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if err := c.ReadJSON(&ack); err != nil {
			return
		}
		sm.mu.Lock()
		if ch, ok := sm.acks[ack.EnvelopeID]; ok {
			ch <- ack.Payload
			delete(sm.acks, ack.EnvelopeID)
		}
		sm.mu.Unlock()
	}
}

// SocketInteract sends payload (Click, Submit) as an interactive envelope over the app's Socket
// Mode connection, once it is open, and returns the payload of the app's acknowledgement.
func (s *Server) SocketInteract(ctx context.Context, payload any) (json.RawMessage, error) {
	return s.socketSend(ctx, "interactive", payload)
}

// SocketCommand sends a slash command (the fields Slack would post, as JSON) as a
// slash_commands envelope and returns the payload of the app's acknowledgement: its answer.
func (s *Server) SocketCommand(ctx context.Context, cmd slack.SlashCommand) (json.RawMessage, error) {
	return s.socketSend(ctx, "slash_commands", cmd)
}

func (s *Server) socketSend(ctx context.Context, kind string, payload any) (json.RawMessage, error) {
	sm := &s.socket
	select {
	case <-sm.connected:
	case <-ctx.Done():
		return nil, fmt.Errorf("no app connected over Socket Mode: %w", ctx.Err())
	}
	ch := make(chan json.RawMessage, 1)
	sm.mu.Lock()
	sm.seq++
	id := "envelope-" + strconv.Itoa(sm.seq)
	sm.acks[id] = ch
	err := sm.conn.WriteJSON(map[string]any{"envelope_id": id, "type": kind, "payload": payload, "accepts_response_payload": true})
	sm.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("sending envelope %s: %w", id, err)
	}
	select {
	case ack := <-ch:
		return ack, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("envelope %s was not acknowledged: %w", id, ctx.Err())
	}
}

// Stop ends the stand-in, its Socket Mode server too.
func (s *Server) Stop() {
	s.socket.stop()
	s.Server.Stop()
}
