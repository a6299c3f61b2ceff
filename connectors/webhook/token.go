package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// ErrToken is returned (wrapped) for a callback token that is malformed, expired or not signed
// for this callback URL.
var ErrToken = errors.New("callback token does not verify")

// CallbackToken is the token the callback of task key carries: the key and an expiry, signed
// with the secret for this callback URL, so it completes only that task of that instance.
func CallbackToken(secret []byte, callbackURL, key string, expires time.Time) string {
	payload := base64.RawURLEncoding.EncodeToString([]byte(key)) + "." + strconv.FormatInt(expires.Unix(), 10)
	return payload + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(secret, callbackURL, payload))
}

func tokenMAC(secret []byte, callbackURL, payload string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("lethe callback\n" + callbackURL + "\n" + payload))
	return m.Sum(nil)
}

// VerifyCallbackToken returns the task key a token was issued for.
func VerifyCallbackToken(secret []byte, callbackURL, token string, now time.Time) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", ErrToken
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, tokenMAC(secret, callbackURL, parts[0]+"."+parts[1])) {
		return "", ErrToken
	}
	exp, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", ErrToken
	}
	if now.After(time.Unix(exp, 0)) {
		return "", errors.Join(ErrToken, errors.New("the token expired"))
	}
	key, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return "", ErrToken
	}
	return string(key), nil
}
