package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/internal/web/webtest"
)

// On the real stack with the salon texting through the Twilio stand-in: a subject who gave an
// email and a phone is offered a text instead of the emailed code, the page then says the code
// went to the number ending in its last two digits (and shows no more of it), and the texted
// code confirms the request in this browser.
func TestMyAccountTextMeACodeInsteadOnTheRealStack(t *testing.T) {
	s := teststack.New(t, teststack.Options{Name: "web-sms", Listen: true, SMS: true, Tenants: teststack.Salon + "\n    sms: sms"})
	s.RunAll()
	s.Serve(s.Handler())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	email, phone := demo.ClearCustomerEmail, demo.ClearCustomerPhone
	b := newBrowser(t, s.URL)

	_, tok := b.page("/myaccount", http.StatusOK)
	res, raw := b.do(http.MethodPost, "/myaccount/requests", url.Values{"csrf_token": {tok}, "type": {"access"}, "email": {email}, "phone": {phone}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, string(raw))
	verify := res.Header.Get("Location")
	id := strings.TrimSuffix(strings.TrimPrefix(verify, "/myaccount/requests/"), "/verify")
	_, err := webtest.AwaitCode(ctx, s.URL, email, id) // the first code is emailed, as before
	require.NoError(t, err)
	awaitStatus(ctx, t, s, id, "identity_pending")

	page, tok := b.page(verify, http.StatusOK)
	assert.Contains(t, page, "we have emailed you a code")
	assert.Contains(t, page, "Text me a code instead")
	assert.Contains(t, page, "ending in 01")
	assert.NotContains(t, page, strings.TrimPrefix(phone, "+"), "the number itself is never shown")

	res, raw = b.do(http.MethodPost, "/myaccount/requests/"+id+"/resend", url.Values{"csrf_token": {tok}, "channel": {"sms"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, string(raw))
	page, tok = b.page(res.Header.Get("Location"), http.StatusOK)
	assert.Contains(t, page, "We have sent you a new code")
	assert.Contains(t, page, "we have sent you a code by text to the number ending in 01")
	assert.Contains(t, page, "Email me a code instead")
	assert.NotContains(t, page, strings.TrimPrefix(phone, "+"))

	var code string
	text := regexp.MustCompile(`verification code is (\d{6})`)
	require.Eventually(t, func() bool {
		for _, m := range s.Twilio.Messages(phone) {
			if m.From == teststack.TwilioSender {
				if c := text.FindStringSubmatch(m.Body); c != nil {
					code = c[1]
				}
			}
		}
		return code != ""
	}, time.Minute, 50*time.Millisecond, "no code texted")
	res, raw = b.do(http.MethodPost, verify, url.Values{"csrf_token": {tok}, "code": {code}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, string(raw))
	page, _ = b.page(res.Header.Get("Location"), http.StatusOK)
	assert.Contains(t, page, "You confirmed it is you")
}
