package mail_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/mailgun/mailgun-go/v4"

	"github.com/lethe-privacy/lethe/internal/mail"
)

func TestMailboxKeepsWhatWasSentAndServesIt(t *testing.T) {
	srv := mailgun.NewMockServer()
	defer srv.Stop()
	mg, err := mail.NewMailgun(mail.Config{Domain: "mg.example.com", APIKey: "k", APIBase: srv.URL(), From: "privacy@mg.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	box := mail.NewMailbox(mg, 3)
	brand := mail.Branding{Name: "Salon Example"}
	// Concurrent sends: the mailbox forwards them one at a time.
	var wg sync.WaitGroup
	for i, to := range []string{"a@example.com", "b@example.com", "a@example.com", "c@example.com"} {
		wg.Add(1)
		go func(i int, to string) {
			defer wg.Done()
			_, err := box.Send(context.Background(), mail.Notice{Kind: mail.KindVerificationCode, To: to, Tenant: brand,
				Data: map[string]any{"RequestID": "R-" + string(rune('1'+i)), "Code": "12345" + string(rune('0'+i))}})
			if err != nil {
				t.Error(err)
			}
		}(i, to)
	}
	wg.Wait()
	if n := len(box.Messages("")); n != 3 {
		t.Fatalf("kept %d messages, want the last 3", n)
	}
	rec := httptest.NewRecorder()
	box.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/dev/mailbox?format=json&to=A@example.com", nil))
	var got []mail.Sent
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	for _, m := range got {
		if m.To != "a@example.com" || !strings.Contains(m.Text, "12345") {
			t.Fatalf("filtered message %+v", m)
		}
	}
	page := httptest.NewRecorder()
	box.Handler().ServeHTTP(page, httptest.NewRequest("GET", "/dev/mailbox", nil))
	if newest := box.Messages("")[0]; !strings.Contains(page.Body.String(), "Dev mailbox") || !strings.Contains(page.Body.String(), newest.Subject) {
		t.Fatal("page does not list the messages")
	}
}
