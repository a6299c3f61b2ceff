package connectors_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/connectors"
)

type fakeConfig struct {
	Greeting string `yaml:"greeting"`
	Limit    int    `yaml:"limit"`
}

func (c *fakeConfig) Validate() error {
	if c.Limit <= 0 {
		return errors.New("limit must be positive")
	}
	return nil
}

type base struct{ cfg *fakeConfig }

func (base) Name() string                { return "fake" }
func (base) Check(context.Context) error { return nil }
func (base) Close() error                { return nil }

// eraser implements Eraser only.
type eraser struct{ base }

func (eraser) Erase(context.Context, connectors.Task) (connectors.EraseResult, error) {
	return connectors.EraseResult{Subjects: 1}, nil
}

func register(t *testing.T, caps []connectors.Capability, build func(*fakeConfig) connectors.Connector) string {
	t.Helper()
	name := fmt.Sprintf("fake-%s-%d", t.Name(), time.Now().UnixNano())
	connectors.MustRegister(connectors.Info{
		Name:         name,
		Capabilities: caps,
		NewConfig:    func() connectors.Config { return &fakeConfig{Greeting: "hello", Limit: 3} },
		New:          func(c connectors.Config) (connectors.Connector, error) { return build(c.(*fakeConfig)), nil },
	})
	return name
}

func TestOpenDecodesOverDefaultsAndValidates(t *testing.T) {
	var got *fakeConfig
	name := register(t, []connectors.Capability{connectors.CapErase}, func(c *fakeConfig) connectors.Connector {
		got = c
		return eraser{base{c}}
	})

	c, err := connectors.Open(name, []byte("limit: 7\n"))
	require.NoError(t, err)
	require.NotNil(t, c)
	assert.Equal(t, "hello", got.Greeting, "default kept")
	assert.Equal(t, 7, got.Limit)

	_, err = connectors.Open(name, []byte("limit: 0\n"))
	require.ErrorContains(t, err, "limit must be positive")

	_, err = connectors.Open(name, []byte("limit: 2\ngreting: typo\n"))
	require.ErrorContains(t, err, "greting", "unknown fields are rejected by name")

	_, err = connectors.Open("no-such-connector", nil)
	require.ErrorContains(t, err, "not registered")
}

func TestOpenRejectsCapabilityMismatch(t *testing.T) {
	declaredMore := register(t, []connectors.Capability{connectors.CapErase, connectors.CapAccess}, func(c *fakeConfig) connectors.Connector {
		return eraser{base{c}}
	})
	_, err := connectors.Open(declaredMore, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "declared but not implemented: [access]")

	declaredLess := register(t, nil, func(c *fakeConfig) connectors.Connector { return eraser{base{c}} })
	_, err = connectors.Open(declaredLess, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "implemented but not declared: [erase]")
}

func TestRegisterRejectsBadInfo(t *testing.T) {
	name := register(t, nil, func(c *fakeConfig) connectors.Connector { return base{c} })
	assert.Contains(t, connectors.Names(), name)
	_, ok := connectors.Lookup(name)
	assert.True(t, ok)

	info := connectors.Info{Name: name, NewConfig: func() connectors.Config { return &fakeConfig{} },
		New: func(connectors.Config) (connectors.Connector, error) { return nil, nil }}
	assert.ErrorContains(t, connectors.Register(info), "already registered")
	info.Name = name + "-x"
	info.Capabilities = []connectors.Capability{"teleport"}
	assert.ErrorContains(t, connectors.Register(info), "unknown capability")
	assert.Panics(t, func() { connectors.MustRegister(connectors.Info{Name: "no-constructors"}) })
}

func TestErrorClassification(t *testing.T) {
	base := errors.New("bad field")
	p := fmt.Errorf("erasing: %w", connectors.Permanent(base))
	assert.True(t, connectors.IsPermanent(p))
	assert.ErrorIs(t, p, base)
	assert.False(t, connectors.IsPermanent(base))
	assert.Nil(t, connectors.Permanent(nil))

	r := fmt.Errorf("calling provider: %w", connectors.RetryAfter(base, 30*time.Second))
	d, ok := connectors.RetryDelay(r)
	assert.True(t, ok)
	assert.Equal(t, 30*time.Second, d)
	assert.False(t, connectors.IsPermanent(r))
	_, ok = connectors.RetryDelay(base)
	assert.False(t, ok)

	b := connectors.Blocked([]connectors.Block{{Code: "active_booking", Reason: "You have a booking on Friday."}})
	assert.True(t, connectors.IsPermanent(b))
	blocks, ok := connectors.BlocksOf(fmt.Errorf("erase: %w", b))
	require.True(t, ok)
	assert.Equal(t, "active_booking", blocks[0].Code)
	assert.NotContains(t, b.Error(), "Friday", "readable reasons stay out of the error text")
}

func TestDoDispatchesAndRefusesUnsupported(t *testing.T) {
	ctx := context.Background()
	out, err := connectors.Do(ctx, eraser{}, connectors.CapErase, connectors.Task{Key: "k"}, connectors.Sinks{})
	require.NoError(t, err)
	assert.Equal(t, connectors.EraseResult{Subjects: 1}, out)

	_, err = connectors.Do(ctx, eraser{}, connectors.CapAccess, connectors.Task{Key: "k"}, connectors.Sinks{})
	assert.ErrorIs(t, err, connectors.ErrUnsupported)
	assert.True(t, connectors.IsPermanent(err))
}

func TestMessageFromParams(t *testing.T) {
	m, err := connectors.MessageFromParams(map[string]any{"channel": "sms", "body": "Your request is complete."})
	require.NoError(t, err)
	assert.Equal(t, connectors.ChannelSMS, m.Channel)

	_, err = connectors.MessageFromParams(map[string]any{"channel": "pigeon", "body": "x"})
	assert.True(t, connectors.IsPermanent(err))
	_, err = connectors.MessageFromParams(map[string]any{"channel": "email"})
	assert.True(t, connectors.IsPermanent(err))
}
