package dashboard

import (
	"net/http"
	"time"

	"github.com/lethe-privacy/lethe/workflows"
)

type breachRow struct {
	ID, Title, Status, Risk string
	AwareAt                 time.Time
}

func (h *handler) breachList(w http.ResponseWriter, r *http.Request, s *session) {
	v := h.view(w, r, s, "Breaches")
	if h.breaches == nil {
		v.Notice = "The breach register is not available in this process."
		h.render(w, r, http.StatusOK, "breaches", v)
		return
	}
	rows, err := h.breaches.List(r.Context(), s.Tenant, "", 200)
	if err != nil {
		h.failed(w, r, s, "list the breaches", err)
		return
	}
	for _, b := range rows {
		v.Breaches = append(v.Breaches, breachRow{ID: b.ID, Title: b.Title, Status: b.Status, Risk: b.Risk, AwareAt: b.AwareAt})
	}
	h.render(w, r, http.StatusOK, "breaches", v)
}

// breachView is one breach's page: each clock with the time left (the page's script counts it
// down; without script the figure is as of the page's time), and what the authority report
// still lacks.
type breachView struct {
	State  workflows.BreachState
	Clocks []clockView
}

type clockView struct {
	workflows.BreachClock
	Left    string
	Running bool
	Late    bool
}

func (h *handler) breachPage(w http.ResponseWriter, r *http.Request, s *session) {
	if h.breaches == nil {
		h.problem(w, r, s, http.StatusNotFound, "Not found", "The breach register is not available in this process.")
		return
	}
	st, err := h.breaches.Get(r.Context(), s.Tenant, r.PathValue("id"))
	if err != nil {
		h.failed(w, r, s, "read the breach", err)
		return
	}
	bv := &breachView{State: st}
	for _, c := range st.Clocks {
		cv := clockView{BreachClock: c}
		if c.RemainingSeconds != nil {
			cv.Running = true
			cv.Late = *c.RemainingSeconds < 0
			cv.Left = remaining(time.Duration(*c.RemainingSeconds) * time.Second)
		}
		bv.Clocks = append(bv.Clocks, cv)
	}
	v := h.view(w, r, s, "Breach "+st.BreachID)
	v.Breach = bv
	h.render(w, r, http.StatusOK, "breach", v)
}

// remaining is a clock's time left in words, as countdown.js writes it.
func remaining(d time.Duration) string {
	late := d < 0
	if late {
		d = -d
	}
	days := int(d / (24 * time.Hour))
	hours := int(d/time.Hour) % 24
	mins := int(d/time.Minute) % 60
	secs := int(d/time.Second) % 60
	out := ""
	if days > 0 {
		out = itoa(days) + " d "
	}
	out += pad(hours) + " h " + pad(mins) + " min " + pad(secs) + " s"
	if late {
		return out + " late"
	}
	return out + " left"
}

func pad(n int) string {
	if n < 10 {
		return "0" + itoa(n)
	}
	return itoa(n)
}
