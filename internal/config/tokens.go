package config

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
)

// TokenTable finds the tenant and role of a presented API token: the API's bearer tokens and
// the dashboard's login take the same tokens.
type TokenTable struct{ tokens []tableToken }

type tableToken struct {
	sum          [sha256.Size]byte
	tenant, role string
}

// TokenTable lists every tenant's resolved tokens.
func (c Config) TokenTable() TokenTable {
	var t TokenTable
	for _, tn := range c.Tenants {
		for _, tok := range tn.Tokens {
			if v := tok.Value(); v != "" {
				t.tokens = append(t.tokens, tableToken{sum: sha256.Sum256([]byte(v)), tenant: tn.ID, role: tok.Role})
			}
		}
	}
	return t
}

// Find returns the presented token's tenant and role. Every token is compared, in constant
// time, so timing reveals neither a token nor how many there are before it.
func (t TokenTable) Find(presented string) (tenant, role string, ok bool) {
	presented = strings.TrimSpace(presented)
	if presented == "" {
		return "", "", false
	}
	sum := sha256.Sum256([]byte(presented))
	for _, tok := range t.tokens {
		if subtle.ConstantTimeCompare(sum[:], tok.sum[:]) == 1 {
			tenant, role, ok = tok.tenant, tok.role, true
		}
	}
	return tenant, role, ok
}
