package crypto

import (
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/lethe-privacy/lethe/connectors/envelope"
)

// DerivedKeyID is the key id of a connector key derived from the signing key.
const DerivedKeyID = "derived"

// ConnectorKeys are the key rings that seal and open each connector instance's commands.
type ConnectorKeys map[string]*envelope.Ring

// Ring is the key ring of one connector; a connector without one cannot be sent anything.
func (k ConnectorKeys) Ring(connector string) (*envelope.Ring, error) {
	r, ok := k[connector]
	if !ok {
		return nil, fmt.Errorf("connector %s has no key to seal its commands with (secrets.connector_keys.%s)", connector, connector)
	}
	return r, nil
}

// NewConnectorKeys builds a ring per connector: from its configured keys, or, for a connector
// with none, from one key derived from the signing key (HKDF-SHA256, one key per connector
// name), so in-process connectors need no key management of their own.
func NewConnectorKeys(signingKey string, connectors []string, configured func(connector string) []envelope.Key) (ConnectorKeys, error) {
	out := ConnectorKeys{}
	for _, name := range connectors {
		keys := configured(name)
		if len(keys) == 0 {
			k, err := DeriveConnectorKey(signingKey, name)
			if err != nil {
				return nil, err
			}
			keys = []envelope.Key{k}
		}
		r, err := envelope.NewRing(keys...)
		if err != nil {
			return nil, fmt.Errorf("secrets.connector_keys.%s: %w", name, err)
		}
		out[name] = r
	}
	return out, nil
}

// DeriveConnectorKey is the key of a connector that has none configured.
func DeriveConnectorKey(signingKey, connector string) (envelope.Key, error) {
	secret, err := DeriveConnectorSecret(signingKey, connector)
	if err != nil {
		return envelope.Key{}, err
	}
	return envelope.NewKey(DerivedKeyID, secret)
}

// DeriveConnectorSecret is the 32 bytes of DeriveConnectorKey, for handing to a remote
// connector's program in development.
func DeriveConnectorSecret(signingKey, connector string) ([]byte, error) {
	if signingKey == "" {
		return nil, fmt.Errorf("connector %s: no key configured and no signing key to derive one from (secrets.signing_key)", connector)
	}
	secret, err := hkdf.Key(sha256.New, []byte(signingKey), nil, "lethe connector command key\x00"+connector, envelope.KeySize)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("deriving the key of connector %s", connector), err)
	}
	return secret, nil
}
