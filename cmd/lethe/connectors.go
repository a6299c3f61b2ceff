package main

// Connectors compiled into the lethe binary: adding one is one new package and one line in
// connectors/builtin.
import _ "github.com/lethe-privacy/lethe/connectors/builtin"
