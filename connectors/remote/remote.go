// Package remote is a connectors.Connector whose work is done by an out-of-process connector,
// in any language, reached over Kafka with nothing but the documented protocol (schemas/):
// each role call publishes a lethe.connector.command on lethe.connector.<name>.commands and
// waits for the lethe.connector.result with the same idempotency key and task token on
// lethe.connector.results. For access it reads the exported JSON Lines files back, checks
// their SHA-256, and replays them into the RecordSink.
//
// It exists so that connectortest.Run can hold any out-of-process connector to the same
// contract as a Go one, and so that integrators can drive their connector from Go tests.
package remote

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/connectors/envelope"
	"github.com/lethe-privacy/lethe/connectors/exportstore"
	"github.com/lethe-privacy/lethe/connectors/protocol"
	"github.com/lethe-privacy/lethe/schemas"
)

// Config describes the out-of-process connector.
type Config struct {
	// Name is the connector's name: its commands go to lethe.connector.<Name>.commands.
	Name string
	// Capabilities are the actions the remote connector serves. Calls for any other action
	// fail with connectors.ErrUnsupported without reaching Kafka.
	Capabilities []connectors.Capability
	// ExportDir is the directory the remote connector writes access exports to: commands
	// name a file:// location below it, and exported files are read back only from inside it.
	ExportDir string
	// Kafka is the cluster the remote connector serves on.
	Kafka protocol.Kafka
	// Keys seal the commands: the remote program holds the same keys to open them.
	Keys *envelope.Ring
	// TenantID is sent when a Task names none. Default "default".
	TenantID string
	// Timeout bounds the wait for a result; each progress result restarts it. Default 2 min.
	Timeout time.Duration
	Log     *slog.Logger
}

// client forwards role calls to a remote connector. It has every role method the protocol
// can carry and, through Capabilities (connectors.Scoped), serves only the declared ones, so
// connectors.Implemented and the registry's capability check see the remote side as it is.
type client struct {
	cfg     Config
	writer  *kafka.Writer
	exports *exportstore.Dir
	stop    func()

	mu      sync.Mutex
	waiting map[waitKey]chan delivery
}

type waitKey struct{ key, token string }

type delivery struct {
	res protocol.Result
	err error
}

// Patterns of schemas/common.schema.json.
var (
	namePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	keyPattern  = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,200}$`)
	idPattern   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	notID       = regexp.MustCompile(`[^A-Za-z0-9_-]`)
)

// wireName returns s if the protocol can carry it. Otherwise (Go callers may use any string as
// a key) it returns a readable prefix plus a digest of s: the same s always maps to the same
// name, so idempotency by key survives the mapping, and different names stay different.
func wireName(s string, valid *regexp.Regexp, prefix int) string {
	if s == "" || valid.MatchString(s) {
		return s
	}
	p := notID.ReplaceAllString(s, "_")
	if len(p) > prefix {
		p = p[:prefix]
	}
	return p + "-" + digest(s)
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// New starts following lethe.connector.results (the topic must exist) and returns a connector
// implementing the role interfaces of cfg.Capabilities. Close stops it.
// Find cannot be served: the protocol has no export format for found subjects yet.
func New(ctx context.Context, cfg Config) (connectors.Connector, error) {
	if !namePattern.MatchString(cfg.Name) {
		return nil, fmt.Errorf("remote connector name %q: want lower-case letters, digits, '-' or '_'", cfg.Name)
	}
	for _, c := range cfg.Capabilities {
		// Found subjects have no export format in the protocol yet.
		if r, ok := connectors.RoleOf(c); !ok || r.Sink == connectors.SubjectsSink {
			return nil, fmt.Errorf("remote connector %s: capability %q cannot be served over the protocol", cfg.Name, c)
		}
	}
	if cfg.ExportDir == "" {
		return nil, fmt.Errorf("remote connector %s: ExportDir is required", cfg.Name)
	}
	if cfg.Keys == nil {
		return nil, fmt.Errorf("remote connector %s: Keys are required: commands never carry identifiers in clear", cfg.Name)
	}
	if cfg.TenantID == "" {
		cfg.TenantID = "default"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	dir, err := exportstore.NewDir(cfg.ExportDir)
	if err != nil {
		return nil, err
	}
	if len(cfg.Kafka.Brokers) == 0 {
		return nil, fmt.Errorf("remote connector %s: Kafka brokers are required", cfg.Name)
	}
	c := &client{cfg: cfg, writer: cfg.Kafka.Writer(), exports: dir, waiting: map[waitKey]chan delivery{}}
	c.stop, err = Tail(ctx, cfg.Kafka, protocol.TopicResults, cfg.Log, c.dispatch)
	if err != nil {
		_ = c.writer.Close()
		return nil, fmt.Errorf("following results of connector %s: %w", cfg.Name, err)
	}
	return c, nil
}

// Every role the protocol carries; find is not one yet.
var _ interface {
	connectors.Accessor
	connectors.Eraser
	connectors.Rectifier
	connectors.Restricter
	connectors.BlockChecker
	connectors.Notifier
	connectors.Purger
} = (*client)(nil)

// Capabilities are the roles this remote connector serves (connectors.Scoped).
func (c *client) Capabilities() []connectors.Capability { return c.cfg.Capabilities }

// Name is the remote connector's name.
func (c *client) Name() string { return c.cfg.Name }

// Check asks the Kafka cluster for the results topic; the remote side is only known by its
// answers.
func (c *client) Check(ctx context.Context) error {
	topic := c.cfg.Kafka.Topic(protocol.TopicResults)
	meta, err := c.cfg.Kafka.Client().Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("asking Kafka for %s: %w", topic, err)
	}
	for _, t := range meta.Topics {
		if t.Error != nil {
			return fmt.Errorf("asking Kafka for %s: %w", topic, t.Error)
		}
	}
	return nil
}

// Close stops following results and closes the producer.
func (c *client) Close() error {
	c.stop()
	return c.writer.Close()
}

// dispatch hands a result to the call waiting for it; results of other calls are ignored.
func (c *client) dispatch(m kafka.Message) {
	var res protocol.Result
	if err := json.Unmarshal(m.Value, &res); err != nil {
		return // not ours to judge: the results topic has other writers
	}
	c.mu.Lock()
	ch := c.waiting[waitKey{res.IdempotencyKey, res.TaskToken}]
	c.mu.Unlock()
	if ch == nil {
		return
	}
	d := delivery{res: res}
	if name, err := schemas.Validate(m.Value); err != nil || name != schemas.ConnectorResult {
		// The remote side broke the protocol: say so instead of guessing what it meant.
		d.err = connectors.Permanent(fmt.Errorf("connector %s answered with an invalid result: %v", c.cfg.Name, err))
	}
	select {
	case ch <- d:
	default: // the caller has what it needs; surplus progress is dropped
	}
}

// call publishes one command and waits for its final result.
func (c *client) call(ctx context.Context, action connectors.Capability, task connectors.Task) (protocol.Result, error) {
	role, _ := connectors.RoleOf(action)
	if !slices.Contains(c.cfg.Capabilities, action) {
		return protocol.Result{}, connectors.Permanent(fmt.Errorf("%s on connector %s: %w", action, c.cfg.Name, connectors.ErrUnsupported))
	}
	if role.Subject && task.Subject.IsZero() {
		return protocol.Result{}, connectors.Permanent(connectors.ErrNoSubject)
	}
	if err := ctx.Err(); err != nil {
		return protocol.Result{}, fmt.Errorf("%s on connector %s: %w", action, c.cfg.Name, err)
	}
	if task.Key == "" {
		return protocol.Result{}, connectors.Permanent(errors.New("task has no idempotency key"))
	}
	cmd := protocol.Command{
		Schema: schemas.ConnectorCommand, Version: schemas.CommandVersion,
		ID: "cmd-" + random(12), IdempotencyKey: wireName(task.Key, keyPattern, 100),
		RequestID: wireName(task.RequestID, idPattern, 40), TenantID: wireName(task.TenantID, idPattern, 40),
		Connector: c.cfg.Name, Action: string(action),
		TaskToken: base64.StdEncoding.EncodeToString([]byte("remote:" + random(16))),
		IssuedAt:  time.Now().UTC(),
	}
	if cmd.RequestID == "" {
		// A request id is required on the wire; derive a stable one from the key.
		cmd.RequestID = "r" + digest(task.Key)
	}
	if cmd.TenantID == "" {
		cmd.TenantID = c.cfg.TenantID
	}
	var subject *connectors.Subject
	if role.Subject {
		subject = &task.Subject
	}
	var params json.RawMessage
	if task.Params != nil {
		raw, err := json.Marshal(task.Params)
		if err != nil {
			return protocol.Result{}, connectors.Permanent(fmt.Errorf("encoding params: %w", err))
		}
		params = raw
	}
	if err := cmd.Seal(c.cfg.Keys, subject, params); err != nil {
		return protocol.Result{}, connectors.Permanent(fmt.Errorf("%s command for %s: %w", action, c.cfg.Name, err))
	}
	if action == connectors.CapAccess {
		// One directory per command, so concurrent accesses never share files.
		cmd.Export = &protocol.ExportLocation{Location: c.exports.URI(path.Join(cmd.RequestID, cmd.ID)) + "/"}
	}

	ch := make(chan delivery, 16)
	wk := waitKey{cmd.IdempotencyKey, cmd.TaskToken}
	c.mu.Lock()
	c.waiting[wk] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, wk)
		c.mu.Unlock()
	}()

	data, err := protocol.Encode(cmd)
	if err != nil {
		return protocol.Result{}, connectors.Permanent(fmt.Errorf("%s command for %s: %w", action, c.cfg.Name, err))
	}
	topic := c.cfg.Kafka.Topic(protocol.CommandTopic(c.cfg.Name))
	if err := c.writer.WriteMessages(ctx, kafka.Message{Topic: topic, Key: []byte(cmd.RequestID), Value: data}); err != nil {
		return protocol.Result{}, fmt.Errorf("%s command for %s: publishing to %s: %w", action, c.cfg.Name, topic, err)
	}
	timer := time.NewTimer(c.cfg.Timeout)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return protocol.Result{}, fmt.Errorf("waiting for the %s result of %s: %w", action, c.cfg.Name, ctx.Err())
		case <-timer.C:
			return protocol.Result{}, fmt.Errorf("waiting for the %s result of %s: no answer within %s", action, c.cfg.Name, c.cfg.Timeout)
		case d := <-ch:
			if d.err != nil {
				return d.res, d.err
			}
			switch d.res.Status {
			case protocol.StatusProgress:
				timer.Reset(c.cfg.Timeout)
			case protocol.StatusFailed:
				return d.res, remoteError(c.cfg.Name, d.res)
			default:
				return d.res, nil
			}
		}
	}
}

// Error is a failure reported by the remote connector.
type Error struct {
	Connector string
	Action    string
	Code      string
	Message   string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s on connector %s failed (%s): %s", e.Action, e.Connector, e.Code, e.Message)
}

// remoteError maps a failed result to the SDK's error classes.
func remoteError(name string, res protocol.Result) error {
	e := &Error{Connector: name, Action: res.Action, Code: res.Error.Code, Message: res.Error.Message}
	switch {
	case e.Code == "unsupported":
		return connectors.Permanent(fmt.Errorf("%w: %w", e, connectors.ErrUnsupported))
	case e.Code == "blocked":
		var blocks []connectors.Block
		if res.Output != nil {
			blocks = res.Output.Blocks
		}
		return connectors.Blocked(blocks)
	case res.Error.Permanent:
		return connectors.Permanent(e)
	case res.Error.RetryAfterSeconds > 0:
		return connectors.RetryAfter(e, res.Error.RetryAfter())
	}
	return e
}

// roleResult decodes output.result, the role's own result, when the remote side sent one.
func roleResult(res protocol.Result, into any) error {
	if res.Output == nil || len(res.Output.Result) == 0 {
		return nil
	}
	if err := json.Unmarshal(res.Output.Result, into); err != nil {
		return connectors.Permanent(fmt.Errorf("decoding the %s result of %s: %w", res.Action, res.Connector, err))
	}
	return nil
}

// Access asks for an export and replays the exported tables into sink.
func (c *client) Access(ctx context.Context, task connectors.Task, sink connectors.RecordSink) (connectors.AccessResult, error) {
	var out connectors.AccessResult
	res, err := c.call(ctx, connectors.CapAccess, task)
	if err != nil {
		return out, err
	}
	if res.Output == nil {
		return out, nil
	}
	for _, ref := range res.Output.Exports {
		n, err := c.replay(ctx, ref, sink)
		if err != nil {
			return out, fmt.Errorf("reading export of %s from %s: %w", ref.Table, c.cfg.Name, err)
		}
		out.Tables++
		out.Rows += n
	}
	return out, nil
}

// replay checks one exported file's checksum, then streams it into sink row by row.
func (c *client) replay(ctx context.Context, ref protocol.ExportRef, sink connectors.RecordSink) (int64, error) {
	if err := exportstore.Verify(ctx, c.exports, exportstore.Object{URI: ref.URI, SHA256: ref.SHA256}); err != nil {
		return 0, err
	}
	f, err := c.exports.Open(ctx, ref.URI)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	t, err := protocol.NewTableReader(bufio.NewReaderSize(f, 64<<10), ref.Table)
	if err != nil {
		return 0, err
	}
	head := connectors.Table{Name: t.Header.Table, Columns: t.Header.Columns}
	if ref.Table != "" && head.Name != ref.Table {
		return 0, errors.New("header names a different table than the result")
	}
	if err := sink.BeginTable(ctx, head); err != nil {
		return 0, err
	}
	var n int64
	for {
		row, err := t.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		values, err := protocol.Values(row)
		if err != nil {
			return n, fmt.Errorf("row %d: %w", n+1, err)
		}
		if err := sink.WriteRow(ctx, values); err != nil {
			return n, err
		}
		n++
	}
	if ref.Rows != 0 && ref.Rows != n {
		return n, fmt.Errorf("result counts %d rows, file holds %d", ref.Rows, n)
	}
	return n, sink.EndTable(ctx)
}

// Erase asks the remote connector to erase the subject.
func (c *client) Erase(ctx context.Context, task connectors.Task) (connectors.EraseResult, error) {
	var out connectors.EraseResult
	res, err := c.call(ctx, connectors.CapErase, task)
	if err != nil {
		return out, err
	}
	return out, roleResult(res, &out)
}

// Rectify asks the remote connector to apply Task.Params["changes"].
func (c *client) Rectify(ctx context.Context, task connectors.Task) (connectors.RectifyResult, error) {
	var out connectors.RectifyResult
	res, err := c.call(ctx, connectors.CapRectify, task)
	if err != nil {
		return out, err
	}
	return out, roleResult(res, &out)
}

// Restrict asks the remote connector to restrict (or, with Params["lift"], release) the subject.
func (c *client) Restrict(ctx context.Context, task connectors.Task) (connectors.RestrictResult, error) {
	var out connectors.RestrictResult
	res, err := c.call(ctx, connectors.CapRestrict, task)
	if err != nil {
		return out, err
	}
	return out, roleResult(res, &out)
}

// BlockCheck asks whether the subject can be erased now; the blocks come from output.blocks.
func (c *client) BlockCheck(ctx context.Context, task connectors.Task) (connectors.BlockResult, error) {
	out := connectors.BlockResult{Blocks: []connectors.Block{}}
	res, err := c.call(ctx, connectors.CapBlockCheck, task)
	if err != nil {
		return out, err
	}
	if res.Output != nil {
		out.Blocks = append(out.Blocks, res.Output.Blocks...)
	}
	return out, nil
}

// Notify asks the remote connector to reach the subject.
func (c *client) Notify(ctx context.Context, task connectors.Task) (connectors.NotifyResult, error) {
	var out connectors.NotifyResult
	res, err := c.call(ctx, connectors.CapNotify, task)
	if err != nil {
		return out, err
	}
	return out, roleResult(res, &out)
}

// Purge asks the remote connector to remove records past their retention period.
func (c *client) Purge(ctx context.Context, task connectors.Task) (connectors.PurgeResult, error) {
	var out connectors.PurgeResult
	res, err := c.call(ctx, connectors.CapPurge, task)
	if err != nil {
		return out, err
	}
	return out, roleResult(res, &out)
}

func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
