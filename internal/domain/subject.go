package domain

import (
	"errors"
	"net/mail"
	"regexp"
	"strings"

	"github.com/lethe-privacy/lethe/connectors"
)

// e164 is a phone number in E.164 form.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// CheckIdentifiers says what is wrong with the identifiers a caller gave for a subject (already
// trimmed): an email address must be one address exactly as written, a phone number in E.164
// form. Empty identifiers are not checked.
func CheckIdentifiers(s connectors.Subject) error {
	if s.Email != "" {
		if a, err := mail.ParseAddress(s.Email); err != nil || a.Address != s.Email {
			return errors.New("subject.email is not a valid email address")
		}
	}
	if s.Phone != "" && !e164.MatchString(s.Phone) {
		return errors.New("subject.phone must be in E.164 form, e.g. +4915112345678")
	}
	return nil
}

// phoneMarks are what people write between a number's digits.
var phoneMarks = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", ".", "", "/", "", "\u00a0", "")

// E164 returns a phone number as written ("+44 7700 900123", "0044 7700-900123") in E.164
// form, the one Twilio takes. A number without its country code (national form) is not one:
// which country it belongs to cannot be known.
func E164(phone string) (string, bool) {
	p := phoneMarks.Replace(strings.TrimSpace(phone))
	if strings.HasPrefix(p, "00") {
		p = "+" + p[2:]
	}
	return p, e164.MatchString(p)
}
