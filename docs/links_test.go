// Package docs holds Lethe's contributor documentation. Its test keeps every Markdown file's
// links inside the repository: a clone must read completely on its own.
package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

var (
	// [text](target "title") and ![alt](target); the target stops at a space or ')'.
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)
	// [label]: target
	refLink    = regexp.MustCompile(`(?m)^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	inlineCode = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	scheme     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// TestMarkdownLinksStayInRepository fails on a relative link that leaves the repository, names
// a file that does not exist, or names a heading the target file does not have.
func TestMarkdownLinksStayInRepository(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the repository root %s has no go.mod: %v", root, err)
	}
	files := markdownFiles(t, root)
	if len(files) == 0 {
		t.Fatal("found no Markdown files")
	}
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, file)
		for _, l := range links(string(text)) {
			if msg := checkLink(root, file, l.target); msg != "" {
				t.Errorf("%s:%d: link %q %s", rel, l.line, l.target, msg)
			}
		}
	}
}

// markdownFiles lists the repository's *.md files, skipping hidden directories (.git, .lethe)
// and build output.
func markdownFiles(t *testing.T, root string) []string {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "bin" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing Markdown files: %v", err)
	}
	return files
}

type link struct {
	line   int
	target string
}

// links finds the link targets of a Markdown text outside fenced code blocks and inline code.
func links(text string) []link {
	var out []link
	fenced := false
	for i, line := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		line = inlineCode.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{i + 1, m[1]})
		}
		for _, m := range refLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{i + 1, m[1]})
		}
	}
	return out
}

// checkLink says what is wrong with target as linked from file, or "" when nothing is.
func checkLink(root, file, target string) string {
	if target == "" || scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return "" // empty or absolute URL: not a file of this repository
	}
	path, anchor, _ := strings.Cut(target, "#")
	dest := file
	if path != "" {
		if strings.HasPrefix(path, "/") {
			return "is an absolute path; link relative to the file instead"
		}
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		if rel, err := filepath.Rel(root, dest); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "leads outside the repository"
		}
		if _, err := os.Stat(dest); err != nil {
			return "names a file that does not exist"
		}
	}
	if anchor == "" || !strings.HasSuffix(dest, ".md") {
		return ""
	}
	text, err := os.ReadFile(dest)
	if err != nil {
		return "names a heading of a file that cannot be read"
	}
	if !hasAnchor(string(text), anchor) {
		return "names a heading that does not exist"
	}
	return ""
}

// hasAnchor reports whether a Markdown text has a heading whose GitHub anchor is anchor.
func hasAnchor(text, anchor string) bool {
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~") {
			fenced = !fenced
			continue
		}
		m := heading.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		slug := slugify(m[1])
		if n := seen[slug]; n > 0 {
			seen[slug]++
			slug += "-" + strconv.Itoa(n)
		} else {
			seen[slug] = 1
		}
		if slug == anchor {
			return true
		}
	}
	return false
}

// slugify is GitHub's heading anchor: lower case, keeping letters, marks, digits, connector
// punctuation and hyphens, with each space a hyphen.
func slugify(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.Pc):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// The checker itself: each kind of broken link is caught, and the good ones pass.
func TestCheckLinkCatchesBrokenLinks(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "docs"), 0o755)
	os.WriteFile(filepath.Join(root, "README.md"), []byte("# Lethe\n## Rate limits\n## Rate limits\n```\n## Not a heading\n```\n"), 0o644)
	file := filepath.Join(root, "docs", "guide.md")
	for target, want := range map[string]string{
		"../README.md":               "",
		"../README.md#rate-limits":   "",
		"../README.md#rate-limits-1": "",
		"../docs":                    "",
		"https://example.com/x.md":   "",
		"#":                          "",
		"../../shared/DESIGN.md":     "leads outside the repository",
		"/etc/passwd":                "is an absolute path; link relative to the file instead",
		"missing.md":                 "names a file that does not exist",
		"../README.md#not-a-heading": "names a heading that does not exist",
		"../README.md#quick-start":   "names a heading that does not exist",
	} {
		if got := checkLink(root, file, target); got != want {
			t.Errorf("checkLink(%q) = %q, want %q", target, got, want)
		}
	}
	got := links("[a](one.md) `[b](two.md)` [c](three.md \"title\")\n```\n[d](four.md)\n```\n[e]: five.md\n")
	var targets []string
	for _, l := range got {
		targets = append(targets, l.target)
	}
	if strings.Join(targets, " ") != "one.md three.md five.md" {
		t.Errorf("links found %q, want one.md three.md five.md", targets)
	}
}
