package domain

import (
	"errors"
	"net/mail"
	"regexp"

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
