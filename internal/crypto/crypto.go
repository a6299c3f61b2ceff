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

// RecipientKey is how a breach's notice knows a person it listed once their address is
// forgotten: an HMAC-SHA256, under a key derived from the deployment's, of the breach and the
// lower-cased email, else "tel:" and the E.164 phone. Keyed, so nobody holding the register
// can test a guessed address against it.
func RecipientKey(signingKey, breachID, email, phone string) []byte {
	addr := "tel:" + phone
	if email != "" {
		addr = strings.ToLower(email)
	}
	m := hmac.New(sha256.New, DeriveKey([]byte(signingKey), "lethe breach recipient v1"))
	m.Write([]byte(breachID + "\x00" + addr))
	return m.Sum(nil)
}

// DeriveKey is the key for one purpose ("lethe myaccount csrf v1"), derived from the
// deployment's signing key, so a value signed for one use is never accepted as another.
func DeriveKey(signingKey []byte, purpose string) []byte {
	m := hmac.New(sha256.New, signingKey)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}
