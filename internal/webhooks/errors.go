package webhooks

import (
	"errors"
	"net/url"
)

// unwrapURL drops net/http's "Post \"https://...\": " prefix, which quotes the whole URL.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
