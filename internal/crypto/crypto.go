// Package crypto holds Lethe's keyed hashes and signatures.
package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// SubjectHash is how ledgers that outlive an erasure (consent) know a subject without holding
// an identifier: an HMAC-SHA256 under the deployment's key of the tenant and the subject's
// normalised email, else phone, else customer id.
func SubjectHash(key, tenant, email, phone, customerID string) string {
	id := "email:" + strings.ToLower(strings.TrimSpace(email))
	switch {
	case email == "" && phone != "":
		id = "phone:" + phone
	case email == "" && phone == "":
		id = "customer:" + customerID
	}
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(tenant + "\x00" + id))
	return hex.EncodeToString(m.Sum(nil))
}

// DeriveKey is the key for one purpose ("lethe myaccount csrf v1"), derived from the
// deployment's signing key, so a value signed for one use is never accepted as another.
func DeriveKey(signingKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, signingKey)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
