package main

// Connectors compiled into the lethe binary: each registers itself from init(). Adding one is
// one new package and one line here.
import (
	_ "github.com/lethe-privacy/lethe/connectors/database"
	_ "github.com/lethe-privacy/lethe/connectors/mailchimp"
	_ "github.com/lethe-privacy/lethe/connectors/sms"
)
