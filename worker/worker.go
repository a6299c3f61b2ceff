// Package worker wires Lethe's workflows and activities onto a Temporal worker. Worker-wide
// settings (interceptors in New's options, a data converter beside the client's) belong here,
// so every process and test that runs Lethe's workflows gets them from one place.
package worker

import (
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/workflows"
)

// New returns a worker on taskQueue with every Lethe workflow and activity registered.
func New(c client.Client, taskQueue string, acts *activities.Activities) sdkworker.Worker {
	w := sdkworker.New(c, taskQueue, sdkworker.Options{})
	Register(w, acts)
	return w
}

// Register adds Lethe's workflows and activities to any registry (a worker, a test
// environment, a replayer), so they are listed in one place.
func Register(r sdkworker.Registry, acts *activities.Activities) {
	r.RegisterWorkflow(workflows.SelfCheckWorkflow)
	r.RegisterWorkflow(workflows.RequestWorkflow)
	// By the name StartExportExpiry starts it under (its function's name, as before).
	r.RegisterWorkflowWithOptions(workflows.ExportExpiryWorkflow, workflow.RegisterOptions{Name: activities.ExportExpiryWorkflow})
	r.RegisterWorkflow(workflows.BreachWorkflow)
	r.RegisterWorkflow(workflows.BreachNoticeWorkflow)
	r.RegisterWorkflow(workflows.NoticeForgetWorkflow)
	r.RegisterWorkflow(workflows.DigestWorkflow)
	r.RegisterWorkflow(workflows.RetentionWorkflow)
	r.RegisterWorkflow(workflows.SubjectExpiryWorkflow)
	r.RegisterActivity(acts)
}
