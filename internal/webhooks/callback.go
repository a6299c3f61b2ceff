package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/webhook"
	"github.com/lethe-privacy/lethe/internal/runner"
	"github.com/lethe-privacy/lethe/internal/store"
)

// CallbackPath is where a webhook connector instance's endpoint POSTs a later answer; its
// callback_url is the public URL of Lethe followed by this path with the instance's name.
const CallbackPath = "/webhooks/connectors/{name}/callback"

// Callbacks completes webhook connector steps from their endpoints' callbacks: the answer of a
// held command is applied by the instance's runner (runner.Resume), so it is remembered and
// published on lethe.connector.results exactly as an answer at once would have been.
type Callbacks struct {
	// Runners are the webhook instances' runners by instance name, their connectors opened.
	Runners map[string]*runner.Runner
	Store   *store.Store
	Log     *slog.Logger
}

// Mount serves CallbackPath on mux.
func (cb *Callbacks) Mount(mux *http.ServeMux) {
	mux.Handle("POST "+CallbackPath, cb)
}

type callbackReply struct {
	Status  string `json:"status,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

func reply(w http.ResponseWriter, status int, r callbackReply) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}

// ServeHTTP verifies the token, reads the answer and completes the held command. Bad input
// (a wrong token, a malformed answer) changes nothing and says why; an answer Lethe could not
// record is refused with 503, to be sent again.
func (cb *Callbacks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rn, ok := cb.Runners[name]
	if !ok {
		reply(w, http.StatusNotFound, callbackReply{Code: "not_found", Message: "no webhook connector instance has this name"})
		return
	}
	conn := rn.Connector.(*webhook.Connector)
	key, err := conn.VerifyCallback(r.URL.Query().Get("token"))
	if err != nil {
		reply(w, http.StatusUnauthorized, callbackReply{Code: "unauthorized", Message: err.Error()})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, webhook.MaxAnswer))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		reply(w, http.StatusRequestEntityTooLarge, callbackReply{Code: "too_large", Message: fmt.Sprintf("an answer is at most %d bytes", webhook.MaxAnswer)})
		return
	}
	if err != nil {
		reply(w, http.StatusBadRequest, callbackReply{Code: "invalid_answer", Message: "reading the answer: " + err.Error()})
		return
	}
	ans, err := webhook.ParseAnswer(body)
	if err != nil {
		reply(w, http.StatusBadRequest, callbackReply{Code: "invalid_answer", Message: err.Error()})
		return
	}
	status, rep := cb.complete(r.Context(), name, key, rn, ans)
	reply(w, status, rep)
}

// complete applies the answer to the command held under the key.
func (cb *Callbacks) complete(ctx context.Context, name, key string, rn *runner.Runner, ans webhook.Answer) (int, callbackReply) {
	log := cb.Log.With("connector", name)
	held, err := cb.Store.HeldCommands().Get(ctx, name, key)
	if errors.Is(err, store.ErrNotFound) {
		if _, err := cb.Store.Tasks().Output(ctx, name, key); err == nil {
			return http.StatusOK, callbackReply{Status: "already_completed"}
		}
		return http.StatusNotFound, callbackReply{Code: "not_found", Message: "no task of this instance waits for an answer under this token"}
	}
	if err != nil {
		log.Error("reading a held command for its callback", "err", err)
		return http.StatusServiceUnavailable, callbackReply{Code: "unavailable", Message: "the answer could not be recorded; send it again"}
	}
	err = rn.Resume(ctx, held, func(ctx context.Context, action connectors.Capability, _ connectors.Task, sinks connectors.Sinks) (any, error) {
		return webhook.Apply(ctx, action, ans, sinks)
	})
	if err != nil {
		log.Error("completing a command from its callback", "err", err)
		return http.StatusServiceUnavailable, callbackReply{Code: "unavailable", Message: "the answer could not be recorded; send it again"}
	}
	if ans.Status == webhook.StatusAccepted {
		return http.StatusAccepted, callbackReply{Status: "waiting"}
	}
	log.Info("command completed by its callback")
	return http.StatusOK, callbackReply{Status: "completed"}
}
