package intake_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/lethe-privacy/lethe/internal/bus"
	"github.com/lethe-privacy/lethe/internal/intake"
	"github.com/lethe-privacy/lethe/internal/testenv"
)

// A breach published on lethe.breaches.intake is opened once however often it is delivered;
// what can never be opened goes to lethe.dlq with the reason, and consumption goes on.
func TestBreachesFromKafka(t *testing.T) {
	s := newStack(t)
	in := s.intake(nil)
	in.Breaches = s.Deps.Breaches()
	s.Run("worker", s.Deps.RunWorker)
	s.Run("breaches", in.RunBreaches)

	msg := func(id, tenant string, aware time.Time) map[string]any {
		return map[string]any{"schema": "lethe.breach.intake", "version": 1, "breach_id": id, "tenant_id": tenant, "title": "Booking database copied",
			"aware_at": aware.UTC().Format(time.RFC3339), "affected": []map[string]any{{"jurisdiction": "DE", "count": 1200}},
			"nature": "An intruder copied the bookings table", "reported_by": "siem"}
	}
	id := "siem-" + testenv.Suffix()
	aware := time.Now().Add(-3 * time.Hour)
	s.publish(bus.TopicBreachIntake, msg(id, "salon", aware))
	s.publish(bus.TopicBreachIntake, msg(id, "salon", aware))
	s.publish(bus.TopicBreachIntake, msg(id, "spa", aware))
	s.publish(bus.TopicBreachIntake, msg("siem-future-"+testenv.Suffix(), "salon", time.Now().Add(time.Hour)))
	s.publish(bus.TopicBreachIntake, msg("siem-x-"+testenv.Suffix(), "nosuchtenant", aware))
	noTime, _ := json.Marshal(map[string]any{"schema": "lethe.breach.intake", "version": 1, "breach_id": "b", "tenant_id": "salon", "title": "t", "reported_by": "siem"})
	s.publishRaw(bus.TopicBreachIntake, noTime)
	s.waitCommitted(intake.GroupBreaches, bus.TopicBreachIntake, 6)

	assert.True(t, s.workflowExists(id))
	eventually(t, 30*time.Second, func() bool {
		return s.count(`SELECT count(*) FROM breaches WHERE id = $1 AND tenant_id = 'salon'`, id) == 1
	},
		"breach %s never reached the register", id)
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM breaches`), "one breach, however often delivered")
	assert.Equal(t, "kafka: siem", scalar(t, s, `SELECT opened_by FROM breaches WHERE id = $1`, id))
	assert.Equal(t, 1, s.count(`SELECT count(*) FROM breach_contents WHERE breach_id = $1`, id))

	want := []string{"the id " + id + " is taken", "aware_at lies in the future", `unknown tenant "nosuchtenant"`, `missing property "aware_at"`}
	dls := s.deadLetters(bus.TopicBreachIntake, len(want))
	for i, w := range want {
		assert.Contains(t, dls[i].Reason, w, "dead letter %d", i)
		assert.NotContains(t, dls[i].Reason, "intruder", "dead letter %d reason quotes the content", i)
	}
}
