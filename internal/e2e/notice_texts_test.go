package e2e_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/teststack"
	"github.com/lethe-privacy/lethe/workflows"
)

// A high-risk breach of a salon where a third of the customers the database connector finds
// have only a phone: those get one text each through the salon's sms instance (counted at the
// Twilio stand-in), the rest one email each (at the Mailgun stand-in), although the worker is
// killed while the texts go out, with answers Twilio had not given yet. Twilio's answers come
// 20 ms after each text is recorded, so the kill leaves texts sent and unrecorded; the next
// worker finds them at Twilio by their body instead of sending them again. A number in national
// form cannot be texted and is counted as such; a number that replied STOP fails with 21610.
//
// LETHE_TEXT_PEOPLE sets the customers (default 1,200); with LETHE_TEXT_RATE=1 the stand-in
// answers at once, nobody is killed, and the test logs the texts' rate.
func TestBreachNoticeTextsPhoneOnlyPeopleOnceAcrossAWorkerKill(t *testing.T) {
	customers := 1_200
	if n, err := strconv.Atoi(os.Getenv("LETHE_TEXT_PEOPLE")); err == nil && n > 0 {
		customers = n
	}
	rate := os.Getenv("LETHE_TEXT_RATE") == "1"
	s := &stack{Stack: teststack.New(t, teststack.Options{Name: "e2e-texts", Customers: customers, SMS: true, Listen: true,
		Tenants: teststack.Salon + "\n    sms: sms", Env: map[string]string{"LETHE_MAIL_BATCH_SETTLE": "1s"}}), t: t}
	s.Serve(s.Handler()) // Twilio's status callbacks come here
	// Held back until the run ends, so the texts in doubt at the kill are settled by looking
	// them up at Twilio, not by their callbacks.
	s.Twilio.HoldCallbacks()
	ctx := context.Background()
	if !rate {
		s.Twilio.AnswerDelay = 20 * time.Millisecond
	}
	// Every third customer has only a phone (formatted as people write it); customers 1 and 2
	// share customer 3's, so the three are one person; customer 4's is national, which no text
	// can reach.
	_, err := s.Demo.Exec(ctx, `
		UPDATE customers SET email = NULL, phone = '+44 7700 ' || lpad(id::text, 6, '0') WHERE id % 3 = 0;
		UPDATE customers SET email = NULL, phone = '+44 7700 000003' WHERE id IN (1, 2);
		UPDATE customers SET email = NULL, phone = '07700 900999' WHERE id = 4`)
	require.NoError(t, err)
	stopped, lost := "+447700000006", "+447700000009"
	_, err = s.Twilio.Receive(teststack.TwilioAccount, stopped, teststack.TwilioSender, "STOP")
	require.NoError(t, err)
	s.Twilio.Undeliverable(lost)
	phones := map[string]bool{}
	rows, err := s.Demo.Query(ctx, `SELECT replace(phone, ' ', '') FROM customers WHERE email IS NULL AND phone LIKE '+%'`)
	require.NoError(t, err)
	for rows.Next() {
		var p string
		require.NoError(t, rows.Scan(&p))
		phones[p] = true
	}
	require.NoError(t, rows.Err())
	var emails int
	require.NoError(t, s.Demo.QueryRow(ctx, `SELECT count(*) FROM customers WHERE email IS NOT NULL`).Scan(&emails))

	worker := s.start("worker")
	s.start("bridge")
	s.start("connector", "database")
	svc := s.Deps.Breaches()
	id := s.notifyEveryCustomer("Your name and phone may be used for scam calls and texts.")

	deadline := time.Now().Add(6 * time.Minute)
	textedAtKill := 0
	var firstText time.Time
	if !rate {
		// A fifth of the way through the texts, the worker dies and another one takes over.
		for s.Twilio.Calls("create") < len(phones)/5 {
			require.False(t, time.Now().After(deadline), "the texts never went out")
			time.Sleep(5 * time.Millisecond) // polling the stand-in, not waiting out a timer
		}
		worker.kill()
		textedAtKill = s.Twilio.Calls("create")
		s.start("worker")
	} else {
		for s.Twilio.Calls("create") == 0 {
			require.False(t, time.Now().After(deadline), "the texts never went out")
			time.Sleep(time.Millisecond) // polling the stand-in, not waiting out a timer
		}
		firstText = time.Now()
	}

	st := awaitNoticeRun(t, svc, id, deadline)
	lastText := time.Now()
	run := st.Notices[0]
	require.Equal(t, workflows.NoticeDone, run.Status, run.Error)
	s.record(id+"-notice-1", "notice_texts_worker_killed")
	creates := s.Twilio.Calls("create")
	t.Logf("texts: %d people, %d create calls (%d before the kill), %d resolved at Twilio or in Mailgun's events; progress %+v",
		len(phones), creates, textedAtKill, run.Progress.Resolved, run.Progress)
	if rate {
		d := lastText.Sub(firstText)
		t.Logf("texts' rate: %d texts in %s, %.0f texts/s (the run's end is polled every 50 ms)", creates, d.Round(time.Millisecond), float64(creates)/d.Seconds())
	}

	// Each phone-only person got exactly one text, the one who replied STOP none.
	got := map[string]int{}
	var body string
	for _, m := range s.Twilio.Messages("") {
		if m.From == teststack.TwilioSender && strings.Contains(m.Body, id) {
			got[m.To]++
			body = m.Body
		}
	}
	twice, missed := 0, 0
	for p := range phones {
		want := 1
		if p == stopped {
			want = 0
		}
		switch {
		case got[p] > want:
			twice++
		case got[p] < want:
			missed++
		}
	}
	assert.Len(t, got, len(phones)-1, "phones texted")
	assert.Zero(t, twice, "phone-only people texted more than once")
	assert.Zero(t, missed, "phone-only people never texted")
	assert.Contains(t, body, "dpo@salon.example")
	assert.Contains(t, body, "scam calls and texts")

	// Each email person got exactly one email.
	counts := s.Standin.Count()
	assert.Len(t, counts, emails, "people emailed")
	for e, n := range counts {
		if n != 1 {
			t.Errorf("%s got %d emails", e, n)
		}
	}

	p := run.Progress
	assert.EqualValues(t, len(phones)+3, p.NoEmail, "customers 1 and 2 share customer 3's phone, customer 4's is national")
	assert.EqualValues(t, len(phones)+2, p.ToText, "found with a phone to text, before the same phone is listed once")
	assert.EqualValues(t, 1, p.NoContact)
	assert.EqualValues(t, len(phones)-1, p.Texted)
	assert.EqualValues(t, 1, p.TextFailed, "the number that replied STOP")
	require.NotNil(t, st.Subjects)
	assert.EqualValues(t, len(phones), st.Subjects.Texts)
	assert.EqualValues(t, len(phones)-1, st.Subjects.Texted)
	assert.EqualValues(t, emails+len(phones)-1, st.Subjects.Sent)
	assert.Zero(t, st.Subjects.Pending+st.Subjects.Sending)

	// Twilio's status callbacks, signed, marked each text delivered (one undelivered) and so
	// forgot the phone at once; a callback signed with another token is refused.
	s.Twilio.ReleaseCallbacks()
	assert.Equal(t, map[int]int{http.StatusNoContent: len(phones) - 1}, s.Twilio.Callbacks(), "status callbacks by Lethe's answer")
	st, err = svc.Get(ctx, "salon", id)
	require.NoError(t, err)
	assert.EqualValues(t, len(phones)-2, st.Subjects.Delivered, "texts delivered (no email delivery is reported in this test)")
	assert.EqualValues(t, 1, st.Subjects.Bounced, "the undelivered text")
	assert.EqualValues(t, len(phones)-1, st.Subjects.Forgotten, "phones forgotten once their delivery was final")
	hook := activities.NoticeTextCallback(s.URL, "sms", id, 1)
	form := url.Values{"MessageSid": {"SM00000000000000000000000000000001"}, "AccountSid": {teststack.TwilioAccount}, "MessageStatus": {"delivered"}}
	assert.Equal(t, http.StatusForbidden, postForged(t, hook, form), "a forged status callback")

	out := s.lethe("breaches", "show", id)
	assert.Contains(t, out, fmt.Sprintf("by text: %d listed, %d texted, 1 failed", len(phones), len(phones)-1))
	assert.NotContains(t, out, "+44", "no phone number in the register's view")
}
