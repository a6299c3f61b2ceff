package requests

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/internal/identity"
	"github.com/lethe-privacy/lethe/workflows"
)

// Callers that only know the broad errors (MyAccount, the CLI) still answer sensibly.
func TestSubjectErrorsMatchTheirBroaderOnes(t *testing.T) {
	for _, c := range []struct {
		err  error
		also []error
		not  []error
	}{
		{ErrCodeWrong, []error{ErrInvalid}, []error{ErrCodeExpired, ErrNotFound}},
		{ErrNoCodeSent, []error{ErrInvalid, ErrCodeWrong}, []error{ErrCodeExpired}},
		{ErrCodeUsed, []error{ErrInvalid, ErrCodeExpired}, []error{ErrCodeWrong}},
		{ErrTooManyCodes, []error{ErrInvalid, ErrTooManyAttempts}, nil},
		{ErrAlreadyVerified, []error{ErrRejected}, []error{ErrInvalid}},
		{ErrNoExport, []error{ErrNotFound}, []error{ErrInvalid}},
		{ErrLinkExpired, []error{ErrLinkInvalid}, []error{ErrInvalid}},
		{fmt.Errorf("wrapped: %w", ErrCodeUsed), []error{ErrCodeExpired, ErrInvalid}, nil},
		{ErrNoPhone, []error{ErrInvalid}, []error{ErrNoEmail, ErrRejected}},
		{ErrNoTexts, []error{ErrInvalid}, []error{ErrNoEmail, ErrRejected}},
		{fmt.Errorf("%w (twilio answered 400 (code 21610))", ErrTextRefused), []error{ErrTextRefused, ErrInvalid}, []error{ErrUnavailable}},
	} {
		for _, a := range c.also {
			if !errors.Is(c.err, a) {
				t.Errorf("%q is not %q", c.err, a)
			}
		}
		for _, n := range c.not {
			if errors.Is(c.err, n) {
				t.Errorf("%q must not be %q", c.err, n)
			}
		}
	}
}

func TestCodeErrorsNameTheSubjectsProblem(t *testing.T) {
	for in, want := range map[error]error{
		identity.ErrWrongCode:       ErrCodeWrong,
		identity.ErrNoCode:          ErrNoCodeSent,
		identity.ErrExpired:         ErrCodeExpired,
		identity.ErrUsed:            ErrCodeUsed,
		identity.ErrTooManyAttempts: ErrTooManyAttempts,
		identity.ErrTooManyCodes:    ErrTooManyCodes,
		identity.ErrNotFound:        ErrRequestClosed,
	} {
		if got := codeError(fmt.Errorf("checking: %w", in)); got != want {
			t.Errorf("codeError(%v) = %v, want %v", in, got, want)
		}
	}
	if got := codeError(errors.New("connection refused")); errors.Is(got, ErrInvalid) {
		t.Errorf("an outage reads as the subject's mistake: %v", got)
	}
}

func TestMatchAssertion(t *testing.T) {
	a := identity.Assertion{Email: "Nora@Example.com", CustomerID: "C-7"}
	for _, c := range []struct {
		name string
		sub  connectors.Subject
		want connectors.Subject
		err  error
	}{
		{"empty takes the assertion's", connectors.Subject{}, connectors.Subject{Email: "Nora@Example.com", CustomerID: "C-7"}, nil},
		{"same email in another case", connectors.Subject{Email: "nora@example.com"}, connectors.Subject{Email: "nora@example.com", CustomerID: "C-7"}, nil},
		{"all given and equal", connectors.Subject{Email: "nora@example.com", CustomerID: "C-7"}, connectors.Subject{Email: "nora@example.com", CustomerID: "C-7"}, nil},
		{"another email", connectors.Subject{Email: "uma@example.com"}, connectors.Subject{}, ErrAssertionMismatch},
		{"another customer", connectors.Subject{Email: "nora@example.com", CustomerID: "C-8"}, connectors.Subject{}, ErrAssertionMismatch},
		{"an identifier not vouched for", connectors.Subject{Email: "nora@example.com", Phone: "+4915112345678"}, connectors.Subject{}, ErrAssertionMismatch},
	} {
		sub := c.sub
		err := matchAssertion(&sub, a)
		if err != c.err {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.err)
			continue
		}
		if err == nil && sub != c.want {
			t.Errorf("%s: subject = %+v, want %+v", c.name, sub, c.want)
		}
	}
}

// A code proves the one identifier it reached: an emailed code the email address by
// email_code, a texted code the phone number by sms_code; never both, never the other.
func TestCodeProvesOnlyItsChannelsIdentifier(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	names, p := codeProof(identity.ChannelEmail, at)
	if !slices.Equal(names, []string{IdentifierEmail}) || p != (Proof{Method: "email_code", Actor: "subject", At: at}) {
		t.Errorf("an emailed code proves %v by %+v, want email by email_code", names, p)
	}
	names, p = codeProof(identity.ChannelSMS, at)
	if !slices.Equal(names, []string{IdentifierPhone}) || p != (Proof{Method: "sms_code", Actor: "subject", At: at}) {
		t.Errorf("a texted code proves %v by %+v, want phone by sms_code", names, p)
	}
	// Both methods are ones the workflow accepts.
	for _, m := range []string{"email_code", "sms_code"} {
		if !slices.Contains(workflows.VerificationMethods, m) {
			t.Errorf("the workflow does not accept method %s", m)
		}
	}
}

// The subject learns why a channel cannot reach them, in words of this package.
func TestChannelErrorsForTheSubject(t *testing.T) {
	for in, want := range map[error]error{
		identity.ErrNoEmail: ErrNoEmail, identity.ErrNoPhone: ErrNoPhone, identity.ErrNoTexts: ErrNoTexts,
		fmt.Errorf("%w %q", identity.ErrNoChannel, "fax"): ErrChannel,
	} {
		if got := channelError(in); !errors.Is(got, want) {
			t.Errorf("channelError(%v) = %v, want %v", in, got, want)
		}
	}
	if channelError(nil) != nil {
		t.Error("no error became one")
	}
}
