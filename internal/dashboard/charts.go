package dashboard

import (
	"html/template"
	"math"
	"net/http"
	"time"

	"github.com/lethe-privacy/lethe/internal/store"
)

// chartWeeks is how many weeks the charts cover, this one included.
const chartWeeks = 12

type chartsView struct {
	Since                  time.Time
	Weekly, OnTime, Median template.HTML
	Types                  []typeRow
	Total                  typeRow
}

type typeRow struct {
	Type                string
	Received, Completed int
	OnTime              string // percent of completed on time, "–" when none
	MedianDays          string
}

// weekStart is the Monday (UTC) of t's week, as PostgreSQL's date_trunc('week') gives it.
func weekStart(t time.Time) time.Time {
	t = t.UTC().Truncate(24 * time.Hour)
	return t.AddDate(0, 0, -((int(t.Weekday()) + 6) % 7))
}

func (h *handler) charts(w http.ResponseWriter, r *http.Request, s *session) {
	since := weekStart(h.now()).AddDate(0, 0, -7*(chartWeeks-1))
	weekly, err := h.svc.Store.Requests().Weekly(r.Context(), s.Tenant, since)
	if err != nil {
		h.failed(w, r, s, "count the requests", err)
		return
	}
	byType, err := h.svc.Store.Requests().ByType(r.Context(), s.Tenant, since)
	if err != nil {
		h.failed(w, r, s, "count the requests", err)
		return
	}
	v := h.view(w, r, s, "Charts")
	v.Charts = chartsOf(since, weekly, byType)
	h.render(w, r, http.StatusOK, "charts", v)
}

func chartsOf(since time.Time, weekly, byType []store.WeekStats) *chartsView {
	labels := make([]string, chartWeeks)
	received, completed, onTime := make([]float64, chartWeeks), make([]float64, chartWeeks), make([]float64, chartWeeks)
	done := make([]float64, chartWeeks)
	for i := range labels {
		labels[i] = since.AddDate(0, 0, 7*i).Format("2 Jan")
	}
	for _, ws := range weekly {
		i := int(ws.Week.Sub(since).Hours() / (24 * 7))
		if i < 0 || i >= chartWeeks {
			continue
		}
		received[i] += float64(ws.Received)
		completed[i] += float64(ws.Completed)
		done[i] += float64(ws.OnTime)
	}
	for i := range onTime {
		onTime[i] = math.NaN()
		if completed[i] > 0 {
			onTime[i] = math.Round(100 * done[i] / completed[i])
		}
	}
	cv := &chartsView{
		Since:  since,
		Weekly: barChart("Requests received and completed per week", labels, []series{{"received", received}, {"completed", completed}}, ""),
		OnTime: lineChart("Completed on time per week", labels, []series{{"on time", onTime}}, 100, "%"),
	}
	var typeLabels []string
	var medians []float64
	for _, t := range byType {
		row := typeRow{Type: t.Type, Received: t.Received, Completed: t.Completed, OnTime: percent(t.OnTime, t.Completed), MedianDays: days(t.MedianDays, t.Completed)}
		if t.Type == "" {
			row.Type = "all types"
			cv.Total = row
			continue
		}
		cv.Types = append(cv.Types, row)
		if t.Completed > 0 {
			typeLabels = append(typeLabels, t.Type)
			medians = append(medians, math.Round(10*t.MedianDays)/10)
		}
	}
	cv.Median = barChart("Median days to close, by type", typeLabels, []series{{"median days", medians}}, "")
	return cv
}

func percent(n, of int) string {
	if of == 0 {
		return "–"
	}
	return itoa(int(math.Round(100*float64(n)/float64(of)))) + "%"
}

func days(d float64, n int) string {
	if n == 0 {
		return "–"
	}
	return num(math.Round(10*d)/10) + " days"
}
