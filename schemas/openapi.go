package schemas

import _ "embed"

// OpenAPI is the OpenAPI 3.0 document of the HTTP API (openapi.yaml). The API server validates
// every request against it, so it is the contract, not a description of one.
//
//go:embed openapi.yaml
var OpenAPI []byte
