// Package links signs and verifies the expiring links through which a subject downloads an
// export and staff download a breach's authority report. A token binds a tenant, what it grants
// (a request's export, or one version of a breach's report) and an expiry with HMAC-SHA256
// under a key derived from the deployment's signing key and the link's purpose; it carries no
// personal data.
//
// Format: "v1." + base64url(JSON {"t": tenant, "r": request, "e": unix expiry}) + "." +
// base64url(MAC). The version prefix lets the format change without invalidating the old one
// silently.
package links

import (
	"bytes"
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Errors of Verify. A link that does not parse counts as forged.
var (
	ErrLinkExpired = errors.New("download link has expired")
	ErrLinkForged  = errors.New("download link is not valid")
)

const version = "v1"

// purpose separates these MACs from every other use of the signing key (code hashes, sessions).
const purpose = "lethe export download link v1"

// PurposeBreachReport is the Purpose of the links to a breach's authority reports.
const PurposeBreachReport = "lethe breach report download link v1"

// Link is what a valid token grants: the export of RequestID in TenantID, until Expires.
type Link struct {
	TenantID  string
	RequestID string
	Expires   time.Time
}

type payload struct {
	T string `json:"t"`
	R string `json:"r"`
	E int64  `json:"e"`
}

// Signer signs and verifies links. Key is the deployment's signing key and must not be empty.
type Signer struct {
	Key []byte
	Now func() time.Time // default time.Now
	// Purpose separates one kind of link from another: a link signed for one purpose is forged
	// for every other. Empty is the export download link.
	Purpose string
}

func (s Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s Signer) mac(msg string) []byte {
	k := hmac.New(sha256.New, s.Key)
	k.Write([]byte(cmp.Or(s.Purpose, purpose)))
	m := hmac.New(sha256.New, k.Sum(nil))
	m.Write([]byte(msg))
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// Sign returns a URL-safe token for the request's export, valid for ttl (to the second). It
// panics when the Signer has no key: a link signed with an empty key would be forgeable, and
// wiring must fail at start instead.
func (s Signer) Sign(tenantID, requestID string, ttl time.Duration) (token string, expires time.Time) {
	if len(s.Key) == 0 {
		panic("links: Signer has no key")
	}
	expires = s.now().Add(ttl).Truncate(time.Second).UTC()
	body, _ := json.Marshal(payload{T: tenantID, R: requestID, E: expires.Unix()}) // cannot fail
	signed := version + "." + b64.EncodeToString(body)
	return signed + "." + b64.EncodeToString(s.mac(signed)), expires
}

// Verify checks a token's MAC (in constant time) and then its expiry. A link is expired from
// its Expires instant on; with ErrLinkExpired the authentic Link is returned too, so the refusal
// can be audited against its request.
func (s Signer) Verify(token string) (Link, error) {
	if len(s.Key) == 0 {
		return Link{}, ErrLinkForged
	}
	i := strings.LastIndexByte(token, '.')
	if i < 0 {
		return Link{}, ErrLinkForged
	}
	signed, sig := token[:i], token[i+1:]
	ver, body, ok := strings.Cut(signed, ".")
	if !ok || ver != version {
		return Link{}, ErrLinkForged
	}
	mac, err := b64.Strict().DecodeString(sig)
	if err != nil || !hmac.Equal(mac, s.mac(signed)) {
		return Link{}, ErrLinkForged
	}
	raw, err := b64.Strict().DecodeString(body)
	if err != nil {
		return Link{}, ErrLinkForged
	}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil || p.T == "" || p.R == "" {
		return Link{}, ErrLinkForged
	}
	l := Link{TenantID: p.T, RequestID: p.R, Expires: time.Unix(p.E, 0).UTC()}
	if !s.now().Before(l.Expires) {
		return l, ErrLinkExpired
	}
	return l, nil
}
