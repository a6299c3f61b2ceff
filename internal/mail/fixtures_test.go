package mail_test

import (
	"strings"

	"github.com/lethe-privacy/lethe/internal/mail"
)

var salon = mail.Branding{
	Name:         "Salon Example",
	ContactEmail: "privacy@salon.example",
	LogoURL:      "https://salon.example/logo.png",
	Color:        "#7c3aed",
}

// notice builds a complete notice of kind k for one subject. Every value it puts in the notice
// contains who (e.g. "alpha"), so a test can tell whose data ended up where.
func notice(k mail.Kind, who string) mail.Notice {
	W := strings.ToUpper(who)
	d := map[string]any{"Name": "Nora " + who, "RequestID": "R-" + W + "-7"}
	switch k {
	case mail.KindVerificationCode:
		d["Code"] = "code-" + who + "-4829"
		d["ExpiresInMinutes"] = 15
	case mail.KindAcknowledgement:
		d["RequestType"] = "access"
		d["DueDate"] = "2026-12-28"
	case mail.KindExtension:
		d["RequestType"] = "portability"
		d["Reason"] = "Records for " + who + " are held in three archives"
		d["NewDueDate"] = "2027-02-28"
	case mail.KindBlocked:
		d["Reasons"] = []string{"A booking for " + who + " on 2026-12-01", "An unpaid invoice for " + who}
		d["RecheckDate"] = "2026-12-02"
	case mail.KindBlockedClosed:
		d["Reasons"] = []string{"A booking for " + who + " on 2026-12-01", "An unpaid invoice for " + who}
	case mail.KindDeadlineReminder, mail.KindOverdueEscalation:
		delete(d, "Name")
		d["RequestType"] = "erasure"
		d["DueDate"] = "2026-12-28"
		d["Link"] = "https://lethe.example/v1/requests/R-" + W + "-7"
	case mail.KindBreachClockReminder, mail.KindBreachClockEscalation:
		delete(d, "Name")
		delete(d, "RequestID")
		d["BreachID"] = "R-" + W + "-7"
		d["Notify"] = "supervisory authority"
		d["Regime"] = "EU GDPR"
		d["DueAt"] = "2026-03-09 16:00 UTC"
		d["Limit"] = "72 hours"
		d["Link"] = "https://lethe.example/v1/breaches/R-" + W + "-7"
	case mail.KindDenial:
		d["RequestType"] = "erasure"
		d["Reason"] = "The request for " + who + " repeats one answered last week"
	case mail.KindInformationRequest:
		d["RequestType"] = "erasure"
		d["Question"] = "Which salon did " + who + " visit?"
	case mail.KindExportReady:
		d["Link"] = "https://lethe.example/v1/requests/R-" + W + "-7/export?sig=" + who + "&exp=1"
		d["LinkExpiresAt"] = "2026-12-30 12:00 UTC"
	case mail.KindCompletion:
		d["RequestType"] = "rectification"
	case mail.KindIdentityExpired:
		d["RequestType"] = "objection"
	case mail.KindBreachNotification:
		delete(d, "RequestID")
		d["Nature"] = "A copy of the booking database for " + who + " was exposed"
		d["Consequences"] = "Phishing messages may reach " + who
		d["Measures"] = "We closed the access path used for " + who
		d["Recommendations"] = []string{"Be wary of messages asking " + who + " for passwords"}
		d["ContactPoint"] = "dpo-" + who + "@salon.example"
		d["Reference"] = "B-" + W
	}
	return mail.Notice{Kind: k, To: "nora." + who + "@example.com", Tenant: salon, Language: "en", Data: d}
}

// wantSubject is the fixed subject line of notice(k, "alpha").
var wantSubject = map[mail.Kind]string{
	mail.KindVerificationCode:      "Your verification code for request R-ALPHA-7 at Salon Example",
	mail.KindAcknowledgement:       "Your access request R-ALPHA-7 at Salon Example: due by 2026-12-28",
	mail.KindExtension:             "Your data portability request R-ALPHA-7 at Salon Example: extended to 2027-02-28",
	mail.KindBlocked:               "Your erasure request R-ALPHA-7 at Salon Example cannot be completed yet",
	mail.KindDenial:                "Your erasure request R-ALPHA-7 at Salon Example has been declined",
	mail.KindInformationRequest:    "Your erasure request R-ALPHA-7 at Salon Example: we need more information",
	mail.KindExportReady:           "Your data from Salon Example is ready to download (request R-ALPHA-7)",
	mail.KindCompletion:            "Your rectification request R-ALPHA-7 at Salon Example is complete",
	mail.KindIdentityExpired:       "Your objection request R-ALPHA-7 at Salon Example was closed: identity not confirmed",
	mail.KindBreachNotification:    "Important: a personal data breach at Salon Example",
	mail.KindBlockedClosed:         "Your erasure request R-ALPHA-7 at Salon Example was closed without erasure",
	mail.KindDeadlineReminder:      "Reminder: erasure request R-ALPHA-7 at Salon Example is due by 2026-12-28",
	mail.KindOverdueEscalation:     "Overdue: erasure request R-ALPHA-7 at Salon Example was due by 2026-12-28",
	mail.KindBreachClockReminder:   "Reminder: breach R-ALPHA-7 at Salon Example has a notification due by 2026-03-09 16:00 UTC",
	mail.KindBreachClockEscalation: "Overdue: breach R-ALPHA-7 at Salon Example had a notification due by 2026-03-09 16:00 UTC",
}

// shown lists the text values of a notice's data as a reader would see them.
func shown(n mail.Notice) map[string]string {
	out := map[string]string{}
	for k, v := range n.Data {
		switch x := v.(type) {
		case string:
			out[k] = x
		case []string:
			for i, s := range x {
				out[k+"."+string(rune('0'+i))] = s
			}
		}
	}
	return out
}
