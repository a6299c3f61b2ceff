package e2e_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/api/enums/v1"

	"github.com/lethe-privacy/lethe/connectors"
	"github.com/lethe-privacy/lethe/deploy/demo"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/internal/mail"
	"github.com/lethe-privacy/lethe/internal/requests"
	"github.com/lethe-privacy/lethe/workflows"
)

// A new code the subject asks for is sent by their request's workflow: an update, and the
// activity that mails it through the path of every other notice. The newest code works.
func TestResentCodeIsSentByTheWorkflow(t *testing.T) {
	s := newStack(t)
	s.RunAll()
	ctx := context.Background()
	email := demo.ClearCustomerEmail
	svc := s.Deps.Requests()
	id, err := svc.Submit(ctx, requests.Submission{TenantID: "salon", Type: domain.TypeAccess, Subject: connectors.Subject{Email: email}})
	require.NoError(t, err)
	s.awaitStatus(id, domain.StatusIdentityPending)
	first := s.code(email, id)

	_, err = svc.SendCode(ctx, "salon", id, "")
	require.NoError(t, err)
	var updates, activities []string
	it := s.Deps.Temporal.GetWorkflowHistory(ctx, id, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		e, err := it.Next()
		require.NoError(t, err)
		if a := e.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil {
			updates = append(updates, a.GetAcceptedRequest().GetInput().GetName())
		}
		if a := e.GetActivityTaskScheduledEventAttributes(); a != nil {
			activities = append(activities, a.GetActivityType().GetName())
		}
	}
	require.Equal(t, []string{workflows.UpdateResendCode}, updates)
	require.Contains(t, activities, "ResendVerificationCode")

	var code string
	for _, m := range s.Mailbox.Messages(email) { // newest first
		if m.Kind == mail.KindVerificationCode && m.RequestID == id {
			code = regexp.MustCompile(`\b\d{6}\b`).FindString(m.Text)
			break
		}
	}
	require.NotEmpty(t, code, "the new code was mailed")
	if code != first {
		require.ErrorIs(t, svc.VerifyCode(ctx, "salon", id, first), requests.ErrCodeWrong, "earlier codes stop working")
	}
	require.NoError(t, svc.VerifyCode(ctx, "salon", id, code))
	require.Equal(t, domain.StatusCompleted, s.Await(id).Status)
	s.record(id, "request_access_code_resent")
}
