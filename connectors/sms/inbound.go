package sms

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// Signature is Twilio's X-Twilio-Signature of a form-encoded webhook: the base64 HMAC-SHA1,
// keyed with the account's auth token, of the full URL Twilio called followed by every POST
// parameter's name and value, sorted by name, with no separators.
func Signature(authToken, fullURL string, form url.Values) string {
	var b strings.Builder
	b.WriteString(fullURL)
	names := make([]string, 0, len(form))
	for k := range form {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range form[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	m := hmac.New(sha1.New, []byte(authToken))
	m.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ValidSignature reports whether signature is Twilio's for this request, compared in
// constant time.
func ValidSignature(authToken, fullURL string, form url.Values, signature string) bool {
	if authToken == "" || signature == "" {
		return false
	}
	return hmac.Equal([]byte(Signature(authToken, fullURL, form)), []byte(signature))
}

// Reply is what an inbound text asks of the sender's consent.
type Reply int

// The replies that change consent.
const (
	ReplyOther  Reply = iota
	ReplyOptOut       // STOP and its synonyms: no more texts
	ReplyOptIn        // START and its synonyms: texts again
)

// The keywords Twilio handles by default on long codes, matched as the whole body.
var (
	optOutWords = []string{"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
	optInWords  = []string{"START", "YES", "UNSTOP"}
)

// ReplyOf classifies an inbound text: Twilio's OptOutType parameter (sent with Advanced
// Opt-Out, which also covers a service's own keywords) when present, else the body as one of
// the default keywords.
func ReplyOf(form url.Values) Reply {
	switch strings.ToUpper(form.Get("OptOutType")) {
	case "STOP":
		return ReplyOptOut
	case "START":
		return ReplyOptIn
	case "HELP":
		return ReplyOther
	}
	word := strings.ToUpper(strings.TrimSpace(form.Get("Body")))
	switch {
	case slices.Contains(optOutWords, word):
		return ReplyOptOut
	case slices.Contains(optInWords, word):
		return ReplyOptIn
	}
	return ReplyOther
}
