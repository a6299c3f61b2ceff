package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// EnvRecordHistoryDir names the folder RecordHistory writes to; unset, it records nothing.
const EnvRecordHistoryDir = "LETHE_RECORD_HISTORY_DIR"

// RecordHistory writes workflow id's history to $LETHE_RECORD_HISTORY_DIR/<name>.json, for the
// replay tests in workflows/ (run: LETHE_RECORD_HISTORY_DIR=$PWD/workflows/testdata ...).
func RecordHistory(t testing.TB, c client.Client, id, name string) {
	dir := os.Getenv(EnvRecordHistoryDir)
	if dir == "" {
		return
	}
	t.Helper()
	it := c.GetWorkflowHistory(context.Background(), id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			t.Fatalf("reading the history of %s: %v", id, err)
		}
		h.Events = append(h.Events, e)
	}
	raw, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		t.Fatalf("encoding the history of %s: %v", id, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
