// Package builtin registers every connector compiled into lethe: each registers itself from
// init(), so importing this package (for its side effect) makes all their types configurable.
// The lethe binary, the test stacks and the configuration tests import it, so a connector added
// here is known everywhere at once.
package builtin

import (
	_ "github.com/lethe-privacy/lethe/connectors/database"
	_ "github.com/lethe-privacy/lethe/connectors/mailchimp"
	_ "github.com/lethe-privacy/lethe/connectors/sms"
	_ "github.com/lethe-privacy/lethe/connectors/webhook"
)
