// Package htmlcheck asserts the accessibility basics every MyAccount page must meet, for the
// pages' tests and the browser test.
package htmlcheck

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// Check asserts the accessibility basics every MyAccount page must meet: a language, a
// viewport, one h1, no script, unique ids, a label for every visible form control, and every
// aria-describedby, label and in-page link pointing at an element that exists.
func Check(t testing.TB, page string) {
	t.Helper()
	CheckScripts(t, page)
}

// CheckScripts is Check for a page that may load the scripts named (by src), and no other
// (the dashboard's breach countdown).
func CheckScripts(t testing.TB, page string, allowed ...string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatalf("parsing page: %v", err)
	}
	ids := map[string]int{}
	labelFor := map[string]bool{}
	var controls []*html.Node
	var refs []string // ids referenced from aria-describedby, label for, href="#..."
	h1, viewport, lang := 0, false, ""
	var walk func(n *html.Node, inLabel bool)
	walk = func(n *html.Node, inLabel bool) {
		if n.Type == html.ElementNode {
			if id := attr(n, "id"); id != "" {
				ids[id]++
			}
			switch n.Data {
			case "html":
				lang = attr(n, "lang")
			case "script":
				if src := attr(n, "src"); src == "" || !slices.Contains(allowed, src) {
					t.Error("the page has a script: pages work without JavaScript, and their CSP forbids scripts")
				}
			case "h1":
				h1++
			case "meta":
				viewport = viewport || attr(n, "name") == "viewport"
			case "label":
				if f := attr(n, "for"); f != "" {
					labelFor[f] = true
					refs = append(refs, f)
				}
				inLabel = true
			case "input", "select", "textarea":
				if attr(n, "type") != "hidden" && !inLabel {
					controls = append(controls, n)
				}
			case "a":
				if href := attr(n, "href"); strings.HasPrefix(href, "#") && len(href) > 1 {
					refs = append(refs, href[1:])
				}
			}
			for _, ref := range strings.Fields(attr(n, "aria-describedby")) {
				refs = append(refs, ref)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, inLabel)
		}
	}
	walk(doc, false)
	if lang == "" {
		t.Error("the html element has no lang attribute")
	}
	if !viewport {
		t.Error("no viewport meta element")
	}
	if h1 != 1 {
		t.Errorf("%d h1 headings, want 1", h1)
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q is used %d times", id, n)
		}
	}
	for _, c := range controls {
		id := attr(c, "id")
		if id == "" || !labelFor[id] {
			t.Errorf("%s name=%q has no label", c.Data, attr(c, "name"))
		}
	}
	for _, ref := range refs {
		if ids[ref] == 0 {
			t.Errorf("reference to #%s, which is not on the page", ref)
		}
	}
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

// Inputs returns the name of every input of the page's forms, for tests that check
// what a form asks for.
func Inputs(t testing.TB, page string) map[string]string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" {
			out[attr(n, "name")] = attr(n, "value")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return out
}
