package bridge

import (
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/schemas"
)

// FuzzDecodeResult: lethe.connector.results is written by connectors, some of them outside
// programs. A result its schema accepts is decoded or dead-lettered, never retried for ever;
// and a result the bridge would apply answers exactly the command its token was issued for,
// with every export file inside that command's own directory however the URI is spelled.
func FuzzDecodeResult(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "schemas", "testdata", "connector-result", "*.json"))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	const prefix = "file:///var/lib/lethe/exports/salon-north/req_01HZX3/database/"
	for _, uri := range []string{
		prefix + "bookings.jsonl",
		prefix + "../other/bookings.jsonl",
		prefix + "%2e%2e/%2e%2e/req_02/database/x",
		"file:///var/lib/lethe/exports/salon-north/req_01HZX3/databasex/y",
		"file://host" + prefix[len("file://"):] + "a",
		prefix + "a?x=1",
		"file:var/lib/lethe/exports/salon-north/req_01HZX3/database/a",
	} {
		f.Add([]byte(`{"schema":"lethe.connector.result","version":1,"idempotency_key":"k","request_id":"req_01HZX3","tenant_id":"salon-north","connector":"database","action":"access","task_token":"dG9rZW4=","status":"succeeded","completed_at":"2026-03-01T09:30:00Z","output":{"exports":[{"uri":"` + uri + `","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]}}`))
	}
	cmd := store.Command{ID: "req_01HZX3:database:access:1", RequestID: "req_01HZX3", TenantID: "salon-north",
		Connector: "database", Action: "access", ExportPrefix: prefix}
	dir := "/var/lib/lethe/exports/salon-north/req_01HZX3/database/"
	f.Fuzz(func(t *testing.T, data []byte) {
		if schemas.ValidateAs(schemas.ConnectorResult, data) != nil {
			return // the consumer dead-letters it before decoding
		}
		res, token, err := decodeResult(data)
		if err != nil {
			if !bus.IsInvalid(err) {
				t.Fatalf("refused with a retryable error: %v", err)
			}
			return
		}
		if len(token) == 0 {
			t.Fatal("decoded without a task token")
		}
		if res.Status == protocol.StatusFailed {
			_ = failure(res)
		}
		if err := matches(cmd, res); err != nil {
			return
		}
		if res.RequestID != cmd.RequestID || res.TenantID != cmd.TenantID || res.Connector != cmd.Connector || res.Action != cmd.Action {
			t.Fatalf("a result for another command matched: %+v", res)
		}
		if res.Output == nil {
			return
		}
		for _, e := range res.Output.Exports {
			u, err := url.Parse(e.URI)
			if err != nil || u.Scheme != "file" || u.Host != "" {
				t.Fatalf("accepted an export outside the file store: %q", e.URI)
			}
			if !strings.HasPrefix(path.Clean(u.Path), dir) || !strings.HasPrefix(filepath.Clean(filepath.FromSlash(u.Path)), dir) {
				t.Fatalf("accepted an export outside the command's directory: %q", e.URI)
			}
		}
	})
}
