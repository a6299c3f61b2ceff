package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"strings"
)

// The charts are SVG written here, inline in the page: no script, no external asset, and
// readable without colour (each series also has a pattern of its own in the legend and a
// <title> on every mark for screen readers and hover).

// series is one named row of values, drawn in its CSS class (s0, s1, ...).
type series struct {
	Name   string
	Values []float64
}

const (
	chartW, chartH         = 640, 260
	padL, padR, padT, padB = 44, 12, 16, 48
	plotW, plotH           = chartW - padL - padR, chartH - padT - padB
	tickCount              = 4
	barGap                 = 0.2 // of a group's width
)

// niceMax is the axis top for values up to v: tickCount steps of 1, 2 or 5 times a power of
// ten, never less than 1 (the charts count requests and days).
func niceMax(v float64) float64 {
	raw := v / tickCount
	if raw <= 1 {
		return tickCount
	}
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*mag {
			return m * mag * tickCount
		}
	}
	return 10 * mag * tickCount
}

func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

// frame writes the axes, the value grid and the category labels.
func frame(b *strings.Builder, title string, labels []string, top float64, unit string) {
	fmt.Fprintf(b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(b, `<title>%s</title>`, template.HTMLEscapeString(title))
	for i := 0; i <= tickCount; i++ {
		v := top * float64(i) / tickCount
		y := padT + plotH - plotH*float64(i)/tickCount
		fmt.Fprintf(b, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, padL, padL+plotW, y, y)
		fmt.Fprintf(b, `<text class="tick" x="%d" y="%.1f" text-anchor="end">%s%s</text>`, padL-6, y+4, num(v), unit)
	}
	n := len(labels)
	step := 1
	if n > 8 {
		step = (n + 7) / 8 // at most eight labels fit a phone
	}
	for i, l := range labels {
		if i%step != 0 {
			continue
		}
		x := padL + plotW*(float64(i)+0.5)/float64(n)
		fmt.Fprintf(b, `<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>`, x, padT+plotH+18, template.HTMLEscapeString(l))
	}
	fmt.Fprintf(b, `<line class="axis" x1="%d" x2="%d" y1="%d" y2="%d"/>`, padL, padL+plotW, padT+plotH, padT+plotH)
}

func legend(b *strings.Builder, ss []series) {
	x := padL
	for i, s := range ss {
		fmt.Fprintf(b, `<rect class="s%d" x="%d" y="%d" width="12" height="12"/>`, i, x, chartH-18)
		fmt.Fprintf(b, `<text class="legend" x="%d" y="%d">%s</text>`, x+16, chartH-8, template.HTMLEscapeString(s.Name))
		x += 24 + 8*len(s.Name)
	}
}

// barChart draws grouped bars: one group per label, one bar per series.
func barChart(title string, labels []string, ss []series, unit string) template.HTML {
	top := 0.0
	for _, s := range ss {
		for _, v := range s.Values {
			top = math.Max(top, v)
		}
	}
	top = niceMax(top)
	var b strings.Builder
	frame(&b, title, labels, top, unit)
	group := float64(plotW) / float64(max(len(labels), 1))
	bar := group * (1 - barGap) / float64(max(len(ss), 1))
	for i, l := range labels {
		for j, s := range ss {
			v := s.Values[i]
			h := plotH * v / top
			x := padL + group*float64(i) + group*barGap/2 + bar*float64(j)
			fmt.Fprintf(&b, `<rect class="s%d" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%s, %s: %s%s</title></rect>`,
				j, x, padT+plotH-h, math.Max(bar-1, 1), h, template.HTMLEscapeString(l), template.HTMLEscapeString(s.Name), num(v), unit)
		}
	}
	legend(&b, ss)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lineChart draws each series as a line with a dot per value; NaN leaves a gap.
func lineChart(title string, labels []string, ss []series, top float64, unit string) template.HTML {
	var b strings.Builder
	frame(&b, title, labels, top, unit)
	n := float64(max(len(labels), 1))
	for j, s := range ss {
		var pts, dots []string
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			x := padL + plotW*(float64(i)+0.5)/n
			y := padT + plotH - plotH*v/top
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
			dots = append(dots, fmt.Sprintf(`<circle class="s%d" cx="%.1f" cy="%.1f" r="3.5"><title>%s, %s: %s%s</title></circle>`,
				j, x, y, template.HTMLEscapeString(labels[i]), template.HTMLEscapeString(s.Name), num(v), unit))
		}
		if len(pts) > 1 {
			fmt.Fprintf(&b, `<polyline class="line s%d" points="%s"/>`, j, strings.Join(pts, " "))
		}
		b.WriteString(strings.Join(dots, "")) // over the line
	}
	legend(&b, ss)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}
