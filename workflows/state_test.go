package workflows_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/lethe-privacy/lethe/activities"
	"github.com/lethe-privacy/lethe/internal/domain"
	"github.com/lethe-privacy/lethe/workflows"
)

// Workflow state and activity payloads speak the domain, not Kafka: none of their fields is a
// type of the bus or of the wire format, so the protocol can change without touching what
// Temporal's history and the read model hold.
func TestStateCarriesNoWireTypes(t *testing.T) {
	var a *activities.Activities
	roots := []any{
		domain.RequestState{}, workflows.RequestInput{},
		activities.Transition{}, activities.Dispatch{}, activities.ExportRequest{}, activities.ExportPackage{},
		activities.Notice{}, activities.Reminder{}, activities.Failure{}, activities.ConsentChange{},
	}
	// An activity's result is in history too.
	dispatch := reflect.TypeOf(a.DispatchCommand)
	for i := range dispatch.NumOut() {
		roots = append(roots, reflect.Zero(dispatch.Out(i)).Interface())
	}
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type)
	walk = func(path string, typ reflect.Type) {
		if typ == nil || seen[typ] {
			return
		}
		seen[typ] = true
		if p := typ.PkgPath(); strings.HasSuffix(p, "/internal/bus") || strings.HasSuffix(p, "/connectors/protocol") {
			t.Errorf("%s is %s, a wire type", path, typ)
			return
		}
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(path, typ.Elem())
		case reflect.Map:
			walk(path, typ.Key())
			walk(path, typ.Elem())
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				walk(path+"."+f.Name, f.Type)
			}
		}
	}
	for _, r := range roots {
		if r == nil {
			continue
		}
		typ := reflect.TypeOf(r)
		walk(typ.String(), typ)
	}
}
