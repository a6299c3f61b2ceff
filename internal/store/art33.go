package store

import (
	"strconv"
	"strings"
)

// Art33Element is one thing Art. 33(3) GDPR asks a notification to the authority to describe,
// as one version of the content gives it.
type Art33Element struct {
	Point string // the point of Art. 33(3): a, b, c or d
	Name  string // e.g. "approximate number of data subjects"
	Value string // empty when not given yet
}

// Given reports whether the content gives the element.
func (e Art33Element) Given() bool { return e.Value != "" }

// Label names the element with its point, e.g. "contact point (33(3)(b))".
func (e Art33Element) Label() string { return e.Name + " (33(3)(" + e.Point + "))" }

// Elements lists every Art. 33(3) element in the order of the article, each with what c says
// about it. Point (a) is split into its five parts, each of which may be missing on its own.
func (c Art33) Elements() []Art33Element {
	count := func(n *int64) string {
		if n == nil {
			return ""
		}
		return "about " + strconv.FormatInt(*n, 10)
	}
	return []Art33Element{
		{"a", "nature of the breach", c.Nature},
		{"a", "categories of data subjects", strings.Join(c.SubjectCategories, ", ")},
		{"a", "approximate number of data subjects", count(c.SubjectsApprox)},
		{"a", "categories of personal data records", strings.Join(c.RecordCategories, ", ")},
		{"a", "approximate number of personal data records", count(c.RecordsApprox)},
		{"b", "contact point", c.ContactPoint},
		{"c", "likely consequences", c.Consequences},
		{"d", "measures taken or proposed", c.Measures},
	}
}

// Missing names the Art. 33(3) elements c does not give yet, each with its point.
func (c Art33) Missing() []string {
	var out []string
	for _, e := range c.Elements() {
		if !e.Given() {
			out = append(out, e.Label())
		}
	}
	return out
}
