package activities

import (
	"fmt"
	"strconv"

	"go.temporal.io/sdk/temporal"

	"github.com/lethe-privacy/lethe/connectors"
)

// textError sorts a failed text as mailError sorts mail: permanent (an invalid number, a
// recipient who replied STOP, refused credentials, a tenant without a sender), throttled
// (retry when Twilio said) or transient (retried by policy). The sms connector's errors name
// Twilio's status and code, never the number or the body.
func textError(doing string, err error) error {
	if connectors.IsPermanent(err) {
		return permanent(doing+": "+err.Error(), err)
	}
	if d, ok := connectors.RetryDelay(err); ok {
		return temporal.NewApplicationErrorWithOptions(doing+": throttled: "+err.Error(), "throttled",
			temporal.ApplicationErrorOptions{NextRetryDelay: d, Cause: err})
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// codeText is the text carrying a verification code: short, plain, in the tenant's name.
func codeText(tenant, code string, minutes int) string {
	unit := "minutes"
	if minutes == 1 {
		unit = "minute"
	}
	return tenant + ": your verification code is " + code + ". It expires in " + strconv.Itoa(minutes) + " " + unit +
		". If you did not ask for it, ignore this text."
}
