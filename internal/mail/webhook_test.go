package mail_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/mail"
)

// sign makes a signature the way Mailgun documents it: HMAC-SHA256 of timestamp+token.
func sign(key, timestamp, token string) mail.Signature {
	h := hmac.New(sha256.New, []byte(key))
	h.Write([]byte(timestamp + token))
	return mail.Signature{Timestamp: timestamp, Token: token, Signature: hex.EncodeToString(h.Sum(nil))}
}

func TestVerifyWebhook(t *testing.T) {
	const key = "whsec-lethe-test"
	good := sign(key, "1766900000", "tok-0a1b2c")
	if !mail.VerifyWebhook(key, good) {
		t.Fatal("a correctly signed webhook did not verify")
	}
	tamperedToken, tamperedTime, tamperedSig := good, good, good
	tamperedToken.Token = "tok-0a1b2d"
	tamperedTime.Timestamp = "1766900001"
	tamperedSig.Signature = strings.Repeat("0", 64)
	for name, c := range map[string]struct {
		key string
		sig mail.Signature
	}{
		"wrong key":          {"another-key", good},
		"empty key":          {"", sign("", "1766900000", "tok")},
		"changed token":      {key, tamperedToken},
		"changed timestamp":  {key, tamperedTime},
		"other signature":    {key, tamperedSig},
		"signature not hex":  {key, mail.Signature{Timestamp: good.Timestamp, Token: good.Token, Signature: "zz"}},
		"truncated":          {key, mail.Signature{Timestamp: good.Timestamp, Token: good.Token, Signature: good.Signature[:32]}},
		"missing everything": {key, mail.Signature{}},
	} {
		if mail.VerifyWebhook(c.key, c.sig) {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestSignatureFresh(t *testing.T) {
	now := time.Unix(1766900000, 0)
	for ts, want := range map[string]bool{
		"1766900000": true,
		"1766899701": true,  // 299 s old
		"1766899600": false, // 400 s old: a replay
		"1766900400": false, // from the future
		"soon":       false,
	} {
		if got := (mail.Signature{Timestamp: ts}).Fresh(now, 5*time.Minute); got != want {
			t.Errorf("timestamp %s: fresh = %v, want %v", ts, got, want)
		}
	}
}

func TestParseWebhook(t *testing.T) {
	body := `{
	  "signature": {"timestamp": "1766900000", "token": "tok-1", "signature": "abc"},
	  "event-data": {
	    "event": "failed", "id": "ev-9", "timestamp": 1766899990.25, "severity": "permanent", "reason": "bounce",
	    "recipient": "nora.alpha@example.com",
	    "delivery-status": {"message": "550 5.1.1 nora.alpha@example.com: no such user"},
	    "tags": ["newsletter", "acknowledgement"],
	    "user-variables": {"lethe-request-id": "R-ALPHA-7"},
	    "message": {"headers": {"message-id": "<20261228.abc@mg.lethe.test>"}}
	  }
	}`
	sig, ev, err := mail.ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if sig != (mail.Signature{Timestamp: "1766900000", Token: "tok-1", Signature: "abc"}) {
		t.Errorf("signature = %+v", sig)
	}
	want := mail.Event{
		Type: mail.EventFailed, ID: "ev-9", Timestamp: time.Unix(1766899990, 250_000_000).UTC(),
		MessageID: "20261228.abc@mg.lethe.test", RequestID: "R-ALPHA-7", Kind: mail.KindAcknowledgement,
		Severity: "permanent", Reason: "bounce",
	}
	if ev != want {
		t.Errorf("event = %+v\nwant    %+v", ev, want)
	}

	for name, body := range map[string]string{
		"not JSON":   `event=delivered`,
		"no event":   `{"signature": {}, "event-data": {"id": "x"}}`,
		"wrong type": `{"event-data": {"event": 3}}`,
	} {
		if _, _, err := mail.ParseWebhook([]byte(body)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// A webhook signed with the key verifies after parsing: the two helpers fit together.
func TestParsedWebhookVerifies(t *testing.T) {
	const key = "whsec-lethe-test"
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	s := sign(key, ts, "tok-2")
	body := `{"signature": {"timestamp": "` + s.Timestamp + `", "token": "tok-2", "signature": "` + s.Signature + `"},
	  "event-data": {"event": "delivered", "id": "ev-1", "timestamp": 1766899990, "tags": ["completion"]}}`
	sig, ev, err := mail.ParseWebhook([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if !mail.VerifyWebhook(key, sig) || !sig.Fresh(time.Now(), time.Minute) {
		t.Error("a freshly signed webhook did not verify")
	}
	if ev.Type != mail.EventDelivered || ev.Kind != mail.KindCompletion || ev.RequestID != "" {
		t.Errorf("event = %+v", ev)
	}
}
