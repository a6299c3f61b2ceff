package identity

import (
	"errors"
	"fmt"
	"strings"
)

// Channel is how a one-time code reaches the subject. Checking a code proves exactly the
// identifier its channel reached: an emailed code the email address, a texted one the phone.
type Channel string

// The channels of codes.
const (
	ChannelEmail Channel = "email"
	ChannelSMS   Channel = "sms"
)

// Channels lists every channel, as the API and the resend_code update accept them.
var Channels = []Channel{ChannelEmail, ChannelSMS}

// Errors of choosing a channel. Their messages name what is missing, never a value.
var (
	ErrNoEmail   = errors.New("this request has no email address to send a code to")
	ErrNoPhone   = errors.New("this request has no phone number to text a code to")
	ErrNoTexts   = errors.New("this organisation sends no codes by text")
	ErrNoChannel = errors.New("unknown channel")
)

// Reach is what a request's subject can get a code by: an email address on record, a phone
// number on record, and a tenant that texts (tenants[].sms).
type Reach struct {
	Email, Phone, Texts bool
}

// ParseChannel reads a channel as a subject or the API names it; "" is none asked for.
func ParseChannel(s string) (Channel, error) {
	c := Channel(strings.ToLower(strings.TrimSpace(s)))
	switch c {
	case "", ChannelEmail, ChannelSMS:
		return c, nil
	}
	return "", fmt.Errorf("%w %q: one of email, sms", ErrNoChannel, s)
}

// Choose picks the channel of a code: the one asked for when the subject can get it there;
// with none asked, a text when the subject has a phone, the tenant texts and there is no
// email address, else email as always. A channel that cannot reach the subject is refused
// with ErrNoEmail, ErrNoPhone or ErrNoTexts, never swapped for the other.
func Choose(asked Channel, r Reach) (Channel, error) {
	if asked == "" {
		asked = ChannelEmail
		if r.Phone && r.Texts && !r.Email {
			asked = ChannelSMS
		}
	}
	switch asked {
	case ChannelEmail:
		if !r.Email {
			return "", ErrNoEmail
		}
	case ChannelSMS:
		switch {
		case !r.Phone:
			return "", ErrNoPhone
		case !r.Texts:
			return "", ErrNoTexts
		}
	default:
		return "", fmt.Errorf("%w %q: one of email, sms", ErrNoChannel, string(asked))
	}
	return asked, nil
}

// Identifier is the subject's identifier a code sent by c proves: email or phone.
func (c Channel) Identifier() string {
	if c == ChannelSMS {
		return "phone"
	}
	return "email"
}

// Method is the verification method of a code sent by c: email_code or sms_code.
func (c Channel) Method() string {
	if c == ChannelSMS {
		return "sms_code"
	}
	return "email_code"
}
