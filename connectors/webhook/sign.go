package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the signature of every body Lethe sends to a webhook:
// "t=<unix seconds>,v1=<hex HMAC-SHA256 of t + "." + body>". A receiver may find several v1
// values while a secret is rotated; one that verifies is enough.
const SignatureHeader = "Lethe-Signature"

// Tolerance is how far a signature's timestamp may lie from the receiver's clock by default:
// a captured delivery replayed later is refused.
const Tolerance = 5 * time.Minute

// Sign is the Lethe-Signature value for body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + mac(secret, ts, body)
}

func mac(secret []byte, ts string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ErrSignature is returned (wrapped) by Verify for a missing, malformed, stale or wrong
// signature.
var ErrSignature = errors.New("webhook signature does not verify")

// Verify checks a Lethe-Signature header against body, refusing a timestamp further than
// tolerance from now.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: the header has no t= and v1= parts", ErrSignature)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: its timestamp is %s from now, more than %s", ErrSignature, d.Round(time.Second), tolerance)
	}
	want := []byte(mac(secret, ts, body))
	for _, s := range sigs {
		if hmac.Equal([]byte(s), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no v1 matches the body", ErrSignature)
}
