package mail_test

import (
	"errors"
	"html"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lethe-privacy/lethe/internal/mail"
)

func TestRenderEveryKind(t *testing.T) {
	for _, k := range mail.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			n := notice(k, "alpha")
			r, err := mail.Render(n)
			if err != nil {
				t.Fatal(err)
			}
			if r.Subject != wantSubject[k] {
				t.Errorf("subject = %q, want %q", r.Subject, wantSubject[k])
			}
			for key, v := range shown(n) {
				if !strings.Contains(r.Text, v) {
					t.Errorf("text lacks Data.%s", key)
				}
				if !strings.Contains(r.HTML, html.EscapeString(v)) {
					t.Errorf("HTML lacks Data.%s", key)
				}
			}
			for _, want := range []string{`<html lang="en">`, "background-color:#7c3aed", `src="https://salon.example/logo.png"`} {
				if !strings.Contains(r.HTML, want) {
					t.Errorf("HTML lacks %s", want)
				}
			}
			// Subjects learn whom to ask; staff notices say where they come from instead.
			contact := "Questions about your personal data: privacy@salon.example"
			if k.Staff() {
				contact = "Sent by Lethe to the privacy team."
				if strings.Contains(r.Text+r.HTML, "Questions about your personal data") {
					t.Error("a staff notice speaks to the subject")
				}
			} else if !strings.Contains(r.HTML, `href="mailto:privacy@salon.example"`) {
				t.Error("HTML lacks the tenant's contact address")
			}
			if !strings.Contains(r.Text, contact) {
				t.Errorf("text lacks %q", contact)
			}
			if k.Staff() && !strings.Contains(r.HTML, contact) {
				t.Errorf("HTML lacks %q", contact)
			}
			if strings.Contains(r.HTML+r.Text, "<no value>") || strings.Contains(r.HTML, "ZgotmplZ") {
				t.Error("a template printed a missing or unsafe value")
			}
		})
	}
}

func TestSubjectsHoldNoPersonalData(t *testing.T) {
	for _, k := range mail.Kinds() {
		n := notice(k, "alpha")
		r, err := mail.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(r.Subject, n.To) {
			t.Errorf("%s subject holds the recipient address", k)
		}
		// Only the reference may carry the subject's marker.
		if rest := strings.ReplaceAll(r.Subject, "R-ALPHA-7", ""); strings.Contains(strings.ToLower(rest), "alpha") {
			t.Errorf("%s subject %q holds data other than the request reference", k, r.Subject)
		}
	}
}

func TestCompletionWordingPerRequestType(t *testing.T) {
	phrase := map[string]string{
		"access":        "request for access to your personal data",
		"portability":   "machine-readable format",
		"rectification": "We have corrected your personal data",
		"erasure":       "We have erased your personal data",
		"restriction":   "We have restricted the use of your personal data",
		"objection":     "for the purposes you objected to",
	}
	for _, typ := range mail.RequestTypes() {
		n := notice(mail.KindCompletion, "alpha")
		n.Data["RequestType"] = typ
		r, err := mail.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		for other, p := range phrase {
			if got := strings.Contains(r.Text, p) && strings.Contains(r.HTML, p); got != (other == typ) {
				t.Errorf("%s completion: has %s wording = %v", typ, other, got)
			}
		}
	}
}

func TestTwoSubjectsNeverSeeEachOthersData(t *testing.T) {
	for _, k := range mail.Kinds() {
		// Render both subjects at once, as concurrent activities would.
		var a, b mail.Rendered
		var errA, errB error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a, errA = mail.Render(notice(k, "alpha")) }()
		go func() { defer wg.Done(); b, errB = mail.Render(notice(k, "bravo")) }()
		wg.Wait()
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		for who, r := range map[string]mail.Rendered{"bravo": a, "alpha": b} {
			all := strings.ToLower(r.Subject + r.Text + r.HTML)
			if strings.Contains(all, who) {
				t.Errorf("%s notice for one subject holds the other's (%s) data", k, who)
			}
		}
		if !strings.Contains(strings.ToLower(a.Text), "alpha") || !strings.Contains(strings.ToLower(b.Text), "bravo") {
			t.Errorf("%s notices lack their own subject's data", k)
		}
	}
}

func TestRenderEscapesMarkupInData(t *testing.T) {
	n := notice(mail.KindDenial, "alpha")
	n.Data["Reason"] = `<script>alert("x")</script> & <img src=x onerror=alert(1)>`
	n.Data["Name"] = "<b>Nora</b>"
	n.Tenant.Name = "Salon <i>Example</i>"
	n.Tenant.Color = "red;background:url(javascript:alert(1))"
	n.Tenant.LogoURL = "javascript:alert(1)"
	r, err := mail.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"<script", "<img src=x", "<b>Nora", "<i>Example", "javascript:"} {
		if strings.Contains(r.HTML, bad) {
			t.Errorf("HTML contains unescaped %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;img", "&lt;b&gt;Nora&lt;/b&gt;", "background-color:#1f2937"} {
		if !strings.Contains(r.HTML, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	// The text body is plain text: the reason reads as written.
	if !strings.Contains(r.Text, `<script>alert("x")</script>`) {
		t.Error("text body altered the reason")
	}
}

func TestRenderRejectsUnsafeLinks(t *testing.T) {
	for _, link := range []string{"javascript:alert(1)", "data:text/html,hi", "/relative/path", "https://"} {
		n := notice(mail.KindExportReady, "alpha")
		n.Data["Link"] = link
		_, err := mail.Render(n)
		var fe *mail.FieldError
		if !errors.As(err, &fe) || fe.Field != "Data.Link" {
			t.Errorf("link %q: err = %v, want a Data.Link field error", link, err)
		}
	}
}

func TestUnknownLanguageFallsBackToEnglish(t *testing.T) {
	en, err := mail.Render(notice(mail.KindAcknowledgement, "alpha"))
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"", "xx", "en-GB", "de_AT", "EN"} {
		n := notice(mail.KindAcknowledgement, "alpha")
		n.Language = lang
		r, err := mail.Render(n)
		if err != nil {
			t.Fatalf("%q: %v", lang, err)
		}
		if r != en {
			t.Errorf("language %q did not render the English notice", lang)
		}
	}
}

func TestMissingDataNamesTheField(t *testing.T) {
	required := map[mail.Kind][]string{
		mail.KindVerificationCode:   {"RequestID", "Code"},
		mail.KindAcknowledgement:    {"RequestID", "RequestType", "DueDate"},
		mail.KindExtension:          {"RequestID", "RequestType", "Reason", "NewDueDate"},
		mail.KindBlocked:            {"RequestID", "Reasons"},
		mail.KindDenial:             {"RequestID", "RequestType", "Reason"},
		mail.KindExportReady:        {"RequestID", "Link"},
		mail.KindCompletion:         {"RequestID", "RequestType"},
		mail.KindIdentityExpired:    {"RequestID", "RequestType"},
		mail.KindBreachNotification: {"Nature", "Consequences", "Measures"},
		mail.KindBlockedClosed:      {"RequestID", "Reasons"},
		mail.KindDeadlineReminder:   {"RequestID", "RequestType", "DueDate"},
		mail.KindOverdueEscalation:  {"RequestID", "RequestType", "DueDate"},
	}
	for k, fields := range required {
		for _, f := range fields {
			for _, empty := range []any{nil, "  ", []string{}} {
				n := notice(k, "alpha")
				if empty == nil {
					delete(n.Data, f)
				} else {
					n.Data[f] = empty
				}
				_, err := mail.Render(n)
				var fe *mail.FieldError
				if !errors.As(err, &fe) || fe.Field != "Data."+f || fe.Kind != k {
					t.Errorf("%s without %s (%#v): err = %v", k, f, empty, err)
					continue
				}
				if !strings.Contains(err.Error(), "Data."+f) || strings.Contains(strings.ToLower(err.Error()), "alpha") {
					t.Errorf("%s without %s: error %q should name the field and no values", k, f, err)
				}
			}
		}
	}
}

func TestRenderRejectsBadValuesWithoutEchoingThem(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*mail.Notice)
		field string
	}{
		{"unknown request type", func(n *mail.Notice) { n.Data["RequestType"] = "nora.alpha@example.com" }, "Data.RequestType"},
		{"no tenant name", func(n *mail.Notice) { n.Tenant.Name = "" }, "Tenant.Name"},
		{"bad tenant contact", func(n *mail.Notice) { n.Tenant.ContactEmail = "not an address alpha" }, "Tenant.ContactEmail"},
		{"value of an odd type", func(n *mail.Notice) { n.Data["DueDate"] = struct{ X string }{"alpha"} }, "Data.DueDate"},
	}
	for _, c := range cases {
		n := notice(mail.KindAcknowledgement, "alpha")
		c.edit(&n)
		_, err := mail.Render(n)
		var fe *mail.FieldError
		if !errors.As(err, &fe) || fe.Field != c.field {
			t.Errorf("%s: err = %v, want a %s field error", c.name, err, c.field)
			continue
		}
		if strings.Contains(strings.ToLower(err.Error()), "alpha") {
			t.Errorf("%s: error %q repeats the value", c.name, err)
		}
	}
	if _, err := mail.Render(mail.Notice{Kind: "newsletter", Tenant: salon}); err == nil {
		t.Error("an unknown kind rendered")
	}
}

func TestBreachContactPointDefaultsToTenantContact(t *testing.T) {
	n := notice(mail.KindBreachNotification, "alpha")
	delete(n.Data, "ContactPoint")
	r, err := mail.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "Who to contact:\nprivacy@salon.example") {
		t.Errorf("text lacks the tenant's contact as the contact point:\n%s", r.Text)
	}
	n.Tenant.ContactEmail = ""
	_, err = mail.Render(n)
	var fe *mail.FieldError
	if !errors.As(err, &fe) || fe.Field != "Data.ContactPoint" {
		t.Errorf("err = %v, want a Data.ContactPoint field error", err)
	}
}

func TestDatesAndJSONValues(t *testing.T) {
	n := notice(mail.KindAcknowledgement, "alpha")
	n.Data["DueDate"] = time.Date(2026, 12, 28, 0, 0, 0, 0, time.UTC)
	r, err := mail.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r.Subject, "due by 2026-12-28") {
		t.Errorf("subject = %q", r.Subject)
	}
	// Data that went through workflow history arrives as JSON types.
	b := notice(mail.KindBlocked, "alpha")
	b.Data["Reasons"] = []any{"first reason", "second reason"}
	v := notice(mail.KindVerificationCode, "alpha")
	v.Data["ExpiresInMinutes"] = float64(15)
	for _, c := range []struct {
		n    mail.Notice
		want string
	}{{b, "  - second reason"}, {v, "The code expires in 15 minutes."}} {
		r, err := mail.Render(c.n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Text, c.want) {
			t.Errorf("%s text lacks %q", c.n.Kind, c.want)
		}
	}
}

func TestSubjectIsOneLine(t *testing.T) {
	n := notice(mail.KindCompletion, "alpha")
	n.Tenant.Name = "Salon\r\nBcc: x@example.com"
	r, err := mail.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(r.Subject, "\r\n") {
		t.Errorf("subject %q spans lines", r.Subject)
	}
}

func TestLightBrandColourGetsDarkHeaderText(t *testing.T) {
	n := notice(mail.KindCompletion, "alpha")
	n.Tenant.LogoURL = ""
	for colour, text := range map[string]string{"#FFEE00": "color:#111827", "#1e3a8a": "color:#ffffff"} {
		n.Tenant.Color = colour
		r, err := mail.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.HTML, "background-color:"+strings.ToLower(colour)) || !strings.Contains(r.HTML, "font-weight:bold;"+text+";\">Salon Example") {
			t.Errorf("%s header: want text %s", colour, text)
		}
	}
}

// A blocked erasure closed at the deadline tells the subject every reason and what they can do.
func TestBlockedClosedNamesReasonsAndRemedies(t *testing.T) {
	r, err := mail.Render(notice(mail.KindBlockedClosed, "alpha"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  - A booking for alpha on 2026-12-01", "  - An unpaid invoice for alpha",
		"Submit a new erasure request once nothing stands in the way",
		"reply to this message or contact us",
		"lodge a complaint with a data protection supervisory authority",
	} {
		if !strings.Contains(r.Text, want) {
			t.Errorf("text lacks %q:\n%s", want, r.Text)
		}
	}
	if !strings.Contains(r.HTML, "<li style=\"margin:0 0 8px 0;\">An unpaid invoice for alpha</li>") {
		t.Error("HTML lacks the reasons as a list")
	}
}

// Staff notices name the request, its type and due date and link to it; without a public URL
// they still say how to find it.
func TestStaffNoticesLinkTheRequest(t *testing.T) {
	for _, k := range []mail.Kind{mail.KindDeadlineReminder, mail.KindOverdueEscalation} {
		n := notice(k, "alpha")
		r, err := mail.Render(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"erasure request R-ALPHA-7", "2026-12-28", "https://lethe.example/v1/requests/R-ALPHA-7", "lethe requests show R-ALPHA-7"} {
			if !strings.Contains(r.Text, want) || !strings.Contains(r.HTML, want) {
				t.Errorf("%s lacks %q", k, want)
			}
		}
		delete(n.Data, "Link")
		if r, err = mail.Render(n); err != nil || !strings.Contains(r.Text, "See the request: lethe requests show R-ALPHA-7") {
			t.Errorf("%s without a link: %v\n%s", k, err, r.Text)
		}
	}
}

// A signed link works for anyone who holds it; the MyAccount page Lethe links to opens only in
// the browser bound to the request. The notice says which, never the other's warning.
func TestExportReadySaysWhoTheLinkWorksFor(t *testing.T) {
	n := notice(mail.KindExportReady, "alpha")
	r, err := mail.Render(n)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, "anyone with it can download") || !strings.Contains(r.HTML, "anyone with it can download") {
		t.Errorf("a signed link's notice lacks the warning:\n%s", r.Text)
	}
	n.Data["Link"] = "https://lethe.example/myaccount/requests/R-ALPHA-7"
	delete(n.Data, "LinkExpiresAt")
	if r, err = mail.Render(n); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{r.Text, r.HTML} {
		if strings.Contains(body, "anyone with it") || !strings.Contains(body, "in the browser where you entered your code") {
			t.Errorf("a MyAccount link's notice misdescribes it:\n%s", body)
		}
	}
}
