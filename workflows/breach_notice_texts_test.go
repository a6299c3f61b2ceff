package workflows_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/store"
	"github.com/lethe-privacy/lethe/internal/texts"
	"github.com/lethe-privacy/lethe/internal/twiliostandin"
)

const (
	twilioAccount = twiliostandin.TestAccount
	twilioToken   = twiliostandin.TestToken
	twilioSender  = twiliostandin.TestSender
)

// textWorld is noticeWorld with people known only by a phone, texted through the salon's sms
// instance on the Twilio stand-in.
type textWorld struct {
	*noticeWorld
	twilio *twiliostandin.Server
	sender *texts.Sender
	phones []string
}

func newTextWorld(t *testing.T, emails, phones int) *textWorld {
	t.Helper()
	w := &textWorld{noticeWorld: newNoticeWorld(t, emails), twilio: twiliostandin.New(twilioAccount, twilioToken)}
	t.Cleanup(w.twilio.Stop)
	cfg := twiliostandin.SalonConfig(t, w.twilio)
	w.sender = texts.New(cfg)
	t.Cleanup(func() { _ = w.sender.Close() })
	w.acts.Texts = w.sender
	var rs []store.Recipient
	for i := range phones {
		p := fmt.Sprintf("+4915112%05d", i)
		w.phones = append(w.phones, p)
		rs = append(rs, store.Recipient{Phone: p})
	}
	added, err := w.st.Notices().AddRecipients(context.Background(), "", w.breach, "csv", rs)
	require.NoError(t, err)
	require.EqualValues(t, phones, added)
	return w
}

// texted returns the breach notices each phone got, by phone.
func (w *textWorld) texted() map[string][]twiliostandin.Message {
	out := map[string][]twiliostandin.Message{}
	for _, m := range w.twilio.Messages("") {
		if m.From == twilioSender && strings.Contains(m.Body, w.breach) {
			out[m.To] = append(out[m.To], m)
		}
	}
	return out
}

func (w *textWorld) body(t *testing.T) string {
	t.Helper()
	b, err := activities.NoticeTextBody(mail.Branding{Name: "Salon Example", ContactEmail: "privacy@salon.example"}, w.breach, w.input().Content)
	require.NoError(t, err)
	return b
}

// People known only by a phone get one text each after the emails, in text batches within the
// same window and continue-as-new bounds: a text whose answer a dead attempt never heard is
// found at Twilio by its body and not sent again; a 429 and a 503 are retried after Twilio's
// Retry-After, a full queue at the sender (21611) later; a number Twilio refuses (21211 invalid, 21610 replied STOP) is marked failed with
// the code and the others are texted all the same.
func TestBreachNoticeTextsEachPhoneOnce(t *testing.T) {
	for _, c := range []struct {
		name    string
		fault   func(*textWorld)
		creates int // Twilio create calls, refused ones included
	}{
		{"answered", func(*textWorld) {}, 120},
		{"throttled", func(w *textWorld) { w.twilio.Throttle(1, 7*time.Second) }, 121},
		{"unavailable", func(w *textWorld) { w.twilio.Unavailable(1, 3*time.Second) }, 121},
		{"sender's queue full", func(w *textWorld) { w.twilio.QueueFull(1) }, 121},
		{"answer lost by a dead attempt", func(w *textWorld) {
			// The attempt claimed batch 1 and sent its first text, then died before recording it.
			ctx := context.Background()
			n := w.st.Notices()
			body, err := n.TextBody(ctx, w.breach, 1, w.body(t))
			require.NoError(t, err)
			claimed, err := n.ClaimTexts(ctx, w.breach, 1, 1, 25, time.Now())
			require.NoError(t, err)
			require.Len(t, claimed, 25)
			_, err = w.sender.Send(ctx, "salon", "dead-attempt", claimed[0].Phone, body)
			require.NoError(t, err)
		}, 120},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			w := newTextWorld(t, 30, 120)
			w.twilio.Invalid(w.phones[7])
			_, err := w.twilio.Receive(twilioAccount, w.phones[50], twilioSender, "STOP")
			require.NoError(t, err)
			c.fault(w)
			in := w.input()
			in.TextBatchSize, in.BatchesPerRun = 25, 3
			p, runs, err := w.runUntil(t, in, nil)
			require.NoError(t, err)
			assert.Greater(t, len(runs), 2, "the texts continue as new too")

			got := w.texted()
			for i, ph := range w.phones {
				want := 1
				if i == 7 || i == 50 {
					want = 0
				}
				assert.Len(t, got[ph], want, "texts to phone %d", i)
			}
			assert.Equal(t, c.creates, w.twilio.Calls("create"), "Twilio create calls")
			assert.EqualValues(t, 118, p.Texted)
			assert.EqualValues(t, 2, p.TextFailed)
			assert.EqualValues(t, 30+118, p.Sent, "people told, by email or text")
			assert.Equal(t, 5, p.TextBatches)
			if c.name == "answer lost by a dead attempt" {
				assert.Equal(t, 1, p.Resolved, "found at Twilio")
			}
			// The texts are recorded on the workflow's skipped clock: a 429's Retry-After is waited.
			var spread time.Duration
			require.NoError(t, w.st.Pool.QueryRow(ctx, `SELECT coalesce(extract(epoch FROM max(done_at) - min(done_at)), 0) * interval '1 second'
				FROM breach_notice_texts WHERE breach_id = $1`, w.breach).Scan(&spread))
			// (The other batch goes on in real time meanwhile, so the spread is a little under 7 s; the
			// policy's own first back-off is 1 s.)
			if c.name == "throttled" {
				assert.GreaterOrEqual(t, spread, 5*time.Second, "Retry-After honoured")
			} else if c.name == "answered" {
				assert.Less(t, spread, 5*time.Second)
			}
			counts := w.mailgun.Count()
			assert.Len(t, counts, 30, "people emailed")

			rp, err := w.st.Notices().Progress(ctx, w.breach)
			require.NoError(t, err)
			assert.Equal(t, store.NoticeProgress{Recipients: 150, Sent: 148, Failed: 2, Batches: 1, Texts: 120, Texted: 118, TextFailed: 2}, rp)
			var codes []string
			rows, err := w.st.Pool.Query(ctx, `SELECT error FROM breach_notice_texts WHERE breach_id = $1 AND status = 'failed' ORDER BY seq`, w.breach)
			require.NoError(t, err)
			for rows.Next() {
				var e string
				require.NoError(t, rows.Scan(&e))
				codes = append(codes, e)
			}
			require.NoError(t, rows.Err())
			require.Len(t, codes, 2)
			assert.Contains(t, codes[0], "code 21211")
			assert.Contains(t, codes[1], "code 21610")
			assert.NotContains(t, strings.Join(codes, " "), "+49", "no phone number in the recorded error")

			m := got[w.phones[0]][0]
			assert.LessOrEqual(t, utf8.RuneCountInString(m.Body), activities.MaxText)
			for _, part := range []string{"Someone may try to phish you.", "dpo@salon.example", w.breach, "Salon Example"} {
				assert.Contains(t, m.Body, part)
			}
			assert.Equal(t, w.body(t), m.Body, "every text is the run's one body")
		})
	}
}

// A tenant that sends no texts keeps its phone-only people counted and untold, and a run with
// nobody to text ends after its emails.
func TestBreachNoticeWithoutTextsStillEnds(t *testing.T) {
	w := newNoticeWorld(t, 40)
	p, _ := w.run(t, w.input())
	assert.EqualValues(t, 40, p.Sent)
	assert.Zero(t, p.TextBatches)
	w.exactlyOnce(t, 40)
}
