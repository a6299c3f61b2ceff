package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/lethe-privacy/lethe/internal/requests"
)

// The words for a code that did not work. Unknown ids read like a wrong code, so the page
// never confirms that a request exists.
const (
	wordsWrongCode   = "That code is not right. Check the latest email from us and try again"
	wordsExpired     = "This code has expired. Ask for a new code below"
	wordsTooMany     = "You have entered a wrong code too many times. Ask for a new code below"
	wordsUsed        = "This code has already been used. Ask for a new code below"
	wordsNoCode      = "We have no code waiting for this request. Ask for a new code below"
	wordsTooManySent = "We have sent several codes already. Wait an hour, then ask again"
	wordsNoEmail     = "We have no email address for this request, so we cannot send a code. Please contact us to confirm it is you"
	wordsNoPhone     = "We have no phone number for this request, so we cannot text you a code. Ask for the code by email instead"
	wordsNoTexts     = "We cannot send codes by text. Ask for the code by email instead"
	wordsTextRefused = "We could not send a text to this number. Ask for the code by email instead, or contact us"
	wordsChannel     = "Choose how to get the code: by email or by text"
	wordsNotWaiting  = "This request is not waiting for a code. If you confirmed it already, open the link in our emails on the device where you did; otherwise make a new request"
)

// codeProblem says what went wrong with a code, in words the subject understands. The most
// specific error is tested first: requests' errors also match broader ones.
func codeProblem(err error) (msg string, status int, known bool) {
	switch {
	case errors.Is(err, requests.ErrCodeUsed):
		return wordsUsed, http.StatusUnprocessableEntity, true
	case errors.Is(err, requests.ErrCodeExpired):
		return wordsExpired, http.StatusUnprocessableEntity, true
	case errors.Is(err, requests.ErrTooManyCodes):
		return wordsTooManySent, http.StatusTooManyRequests, true
	case errors.Is(err, requests.ErrTooManyAttempts):
		return wordsTooMany, http.StatusTooManyRequests, true
	case errors.Is(err, requests.ErrNoCodeSent):
		return wordsNoCode, http.StatusUnprocessableEntity, true
	case errors.Is(err, requests.ErrCodeWrong), errors.Is(err, requests.ErrNotFound):
		return wordsWrongCode, http.StatusUnprocessableEntity, true
	case errors.Is(err, requests.ErrAlreadyVerified), errors.Is(err, requests.ErrRequestClosed):
		return wordsNotWaiting, http.StatusConflict, true
	}
	return "", 0, false
}

// resendProblem is the same for asking a new code. An unknown id is answered as if a code
// was sent (sent=true), for the same reason.
func resendProblem(err error) (msg string, status int, sent bool, known bool) {
	switch {
	case errors.Is(err, requests.ErrNotFound):
		return "", 0, true, true
	case errors.Is(err, requests.ErrTooManyCodes):
		return wordsTooManySent, http.StatusTooManyRequests, false, true
	case errors.Is(err, requests.ErrAlreadyVerified), errors.Is(err, requests.ErrRequestClosed):
		return wordsNotWaiting, http.StatusConflict, false, true
	case errors.Is(err, requests.ErrNoEmail):
		return wordsNoEmail, http.StatusConflict, false, true
	case errors.Is(err, requests.ErrNoPhone):
		return wordsNoPhone, http.StatusUnprocessableEntity, false, true
	case errors.Is(err, requests.ErrNoTexts):
		return wordsNoTexts, http.StatusUnprocessableEntity, false, true
	case errors.Is(err, requests.ErrTextRefused):
		return wordsTextRefused, http.StatusUnprocessableEntity, false, true
	case errors.Is(err, requests.ErrChannel):
		return wordsChannel, http.StatusUnprocessableEntity, false, true
	}
	return "", 0, false, false
}

// noExport reports that the request has no export to download (yet, or any more).
func noExport(err error) bool {
	return errors.Is(err, requests.ErrNoExport) || errors.Is(err, requests.ErrNotFound)
}

// replaceFold replaces old in s ignoring case.
func replaceFold(s, old, repl string) string {
	lower, lold := strings.ToLower(s), strings.ToLower(old)
	if len(lower) != len(s) {
		return strings.ReplaceAll(s, old, repl) // case folding changed lengths: exact only
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, lold)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(repl)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
}
