// Package deps pins the project's chosen libraries in go.mod while the packages that use them
// are being written. Remove an import once real code uses it.
package deps

import (
	_ "github.com/hashicorp/go-multierror"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/mailgun/mailgun-go/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rickar/cal/v2"
	_ "github.com/santhosh-tekuri/jsonschema/v6"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/slack-go/slack"
	_ "github.com/spf13/cobra"
	_ "github.com/stretchr/testify/require"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "go.temporal.io/sdk/client"
	_ "gopkg.in/yaml.v3"
)
