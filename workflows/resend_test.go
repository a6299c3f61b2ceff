package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

// A subject's "send me a new code" is an update of their request's workflow, whose activity
// mails the code; once the identity is verified, the workflow refuses it.
func TestResendCodeIsAWorkflowUpdate(t *testing.T) {
	w := newWorld(t)
	var a *activities.Activities
	var asked []activities.CodeRequest
	w.env.OnActivity(a.ResendVerificationCode, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.CodeRequest) (activities.CodeSent, error) {
		w.add(func() { asked = append(asked, r); w.log = append(w.log, "code") })
		return activities.CodeSent{ExpiresAt: r.At.Add(15 * time.Minute)}, nil
	})
	in := input(domain.TypeAccess)
	in.IdentityVerified = false
	first, second := received.Add(time.Hour), received.Add(2*time.Hour)
	w.update(t, time.Hour, workflows.UpdateResendCode, workflows.CodeResend{At: first}, false)
	w.update(t, 2*time.Hour, workflows.UpdateResendCode, workflows.CodeResend{At: second}, false)
	w.update(t, 3*time.Hour, workflows.UpdateVerifyIdentity, workflows.Verification{Method: "email_code", Actor: "subject"}, false)
	w.update(t, 4*time.Hour, workflows.UpdateResendCode, workflows.CodeResend{At: received.Add(4 * time.Hour)}, true)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)

	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Equal(t, []string{"code", "code", "code"}, filter(w.log, "code"), "the code sent on entering identity_pending, then one per resend")
	require.Equal(t, []activities.CodeRequest{
		{Key: "r1:code:1", RequestID: "r1", TenantID: "salon", At: first},
		{Key: "r1:code:2", RequestID: "r1", TenantID: "salon", At: second},
	}, asked)
}

// The subject can ask for the new code by text: the channel reaches the activity, its answer
// says where the code went, an unknown channel is refused before it enters history, and the
// texted code verifies the request by sms_code.
func TestResendCodeByText(t *testing.T) {
	w := newWorld(t)
	var a *activities.Activities
	var asked []activities.CodeRequest
	w.env.OnActivity(a.ResendVerificationCode, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.CodeRequest) (activities.CodeSent, error) {
		w.add(func() { asked = append(asked, r) })
		return activities.CodeSent{ExpiresAt: r.At.Add(15 * time.Minute), Channel: r.Channel}, nil
	})
	in := input(domain.TypeAccess)
	in.IdentityVerified = false
	at := received.Add(time.Hour)
	var sent activities.CodeSent
	w.env.RegisterDelayedCallback(func() {
		w.env.UpdateWorkflow(workflows.UpdateResendCode, "by-text", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { t.Errorf("resend by text rejected: %v", err) },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				require.NoError(t, err)
				sent = v.(activities.CodeSent)
			},
		}, workflows.CodeResend{At: at, Channel: "sms"})
	}, time.Hour)
	w.update(t, 90*time.Minute, workflows.UpdateResendCode, workflows.CodeResend{At: at, Channel: "fax"}, true)
	w.update(t, 2*time.Hour, workflows.UpdateVerifyIdentity, workflows.Verification{Method: "sms_code", Actor: "subject"}, false)
	w.env.SetStartTime(received)
	w.env.ExecuteWorkflow(workflows.RequestWorkflow, in)
	st := w.result(t)

	require.Equal(t, domain.StatusCompleted, st.Status)
	require.Equal(t, []activities.CodeRequest{{Key: "r1:code:1", RequestID: "r1", TenantID: "salon", At: at, Channel: "sms"}}, asked,
		"one resend, by text; the refused one never ran")
	require.Equal(t, activities.CodeSent{ExpiresAt: at.Add(15 * time.Minute), Channel: "sms"}, sent)
	require.NotNil(t, st.IdentityVerifiedAt)
	require.Equal(t, received.Add(2*time.Hour), st.IdentityVerifiedAt.UTC(), "verified when the texted code was checked")
}
