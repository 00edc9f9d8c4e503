package integration

// The documentation's own checks. This file has no build tag: it needs no
// Docker, so `make test` (go -C integration test ./...) runs it with the unit
// tests. It reads the repository's Markdown files from disk, as GitHub would
// render them, and checks that every relative link and anchor resolves and
// that the front doors stay short.

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docsMaxLines bounds the length of the documents a newcomer reads first, by
// path relative to the repository root, in lines.
var docsMaxLines = map[string]int{
	"README.md":     300,
	"BENCHMARKS.md": 350,
}

// docsSkipDirs are directory names the walk does not enter: version control,
// and output that the tests, the benchmark or Composer write into the tree
// (git-ignored, never published), and test fixtures.
var docsSkipDirs = map[string]bool{
	"bench-results": true,
	"artifacts":     true,
	"node_modules":  true,
	"vendor":        true,
	"testdata":      true,
}

// TestDocsLinks fails for every relative link or image in the repository's
// Markdown files whose target does not exist, and for every anchor that no
// heading of the target file produces under GitHub's rules.
func TestDocsLinks(t *testing.T) {
	root := docsRepoRoot(t)
	problems, err := docsCheckTree(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestDocsLength fails when a front-door document exceeds its line budget.
func TestDocsLength(t *testing.T) {
	root := docsRepoRoot(t)
	for name, limit := range docsMaxLines {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if n := docsLineCount(string(b)); n > limit {
			t.Errorf("%s has %d lines; at most %d", name, n, limit)
		}
	}
}

// TestDocsCheckerFindsBrokenLinks runs the checker on a small tree with known
// good and broken links, so that a checker that found nothing cannot pass.
func TestDocsCheckerFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"README.md": strings.Join([]string{
			"# Title",
			"",
			"[ok](docs/b.md#some-heading) [self](#title) [dir](docs) [dup](docs/b.md#dup-1)",
			"[env](docs/b.md#compose-env) [web](https://example.com/nope) [mail](mailto:a@b)",
			"[file only](docs/b.md) ![img](docs/pic.png) [up](docs/../README.md#title)",
			"[titled](docs/b.md \"a title\") [angled](<docs/b.md#dup>) [root](/docs/b.md)",
			"[setext](docs/b.md#setext-title) [html](docs/b.md#kept) [query](docs/b.md?plain=1#dup)",
			"",
			"[missing file](missing.md) [missing anchor](docs/b.md#nope)",
			"[self missing](#nope) ![missing image](missing.png) [dup2](docs/b.md#dup-2)",
			"[ref]: missing-ref.md",
			"[okref]: docs/b.md#some-heading",
			"[split",
			"text](missing-split.md)",
			"",
			"`[in code](missing-code.md)` and ``a ` [b](missing-code2.md)``",
			"",
			"```sh",
			"[in fence](missing-fence.md)",
			"# not a heading",
			"```",
			"",
			"  ~~~",
			"  [in tilde fence](missing-tilde.md)",
			"  ~~~",
			"",
			"[outside](../outside.md)",
			"",
		}, "\n"),
		"docs/b.md": strings.Join([]string{
			"# B",
			"## Some heading",
			"## Dup",
			"## Dup",
			"### compose (`.env`)",
			"",
			"[back](../README.md#title) [back missing](../README.md#not-a-heading)",
			"[fence heading](../README.md#not-a-heading-1)",
			"",
			"Setext title",
			"------------",
			"",
			"<a id=\"kept\"></a>",
			"",
			"- a list item",
			"---",
			"[not setext](#a-list-item)",
		}, "\n"),
		"docs/pic.png":               "png",
		"bench-results/x.md":         "[skipped](missing-skipped.md)",
		".git/x.md":                  "[skipped](missing-git.md)",
		"integration/artifacts/a.md": "[skipped](missing-artifacts.md)",
	}
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	problems, err := docsCheckTree(root)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`README.md:9: "missing.md"`,
		`README.md:9: "docs/b.md#nope"`,
		`README.md:10: "#nope"`,
		`README.md:10: "missing.png"`,
		`README.md:10: "docs/b.md#dup-2"`,
		`README.md:11: "missing-ref.md"`,
		`README.md:14: "missing-split.md"`,
		`README.md:27: "../outside.md"`,
		`docs/b.md:7: "../README.md#not-a-heading"`,
		`docs/b.md:8: "../README.md#not-a-heading-1"`,
		`docs/b.md:17: "#a-list-item"`,
	}
	var got []string
	for _, p := range problems {
		got = append(got, p[:strings.Index(p, `": `)+1])
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant problems at:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
}

// TestDocsSlug checks heading anchors against GitHub's, as GitHub renders
// these headings of this repository.
func TestDocsSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"fpmq — RabbitMQ jobs, run by a php-fpm pool":                 "fpmq--rabbitmq-jobs-run-by-a-php-fpm-pool",
		"Latest results: 2026-11-30 02:40 UTC":                        "latest-results-2026-11-30-0240-utc",
		"The deployment's defaults, and the measurements behind them": "the-deployments-defaults-and-the-measurements-behind-them",
		"compose (`.env`)":                 "compose-env",
		"Many daemons, many pools":         "many-daemons-many-pools",
		"`HTTP_X_JOB_NAME` and *emphasis*": "http_x_job_name-and-emphasis",
		"A [linked](other.md) heading":     "a-linked-heading",
		"Ünïcode Straße 2":                 "ünïcode-straße-2",
	} {
		if got := docsSlug(heading); got != want {
			t.Errorf("docsSlug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// docsRepoRoot returns the repository root: the parent of the integration
// module, the test's working directory.
func docsRepoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"go.mod", "integration/go.mod", "README.md"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Fatalf("repository root %s: %v", root, err)
		}
	}
	return root
}

// docsLineCount counts lines as wc -l does, plus a last line without its
// newline.
func docsLineCount(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// docsDoc is what the checker reads from one Markdown file.
type docsDoc struct {
	links   []docsLink      // relative and absolute link targets, in order
	anchors map[string]bool // the ids GitHub gives its headings and HTML anchors
}

// docsLink is one link or image target and the 1-based line it starts on.
type docsLink struct {
	line   int
	target string
}

var (
	// docsFenceRe opens or closes a fenced code block (any indentation, so
	// that fences inside list items count).
	docsFenceRe = regexp.MustCompile("^[ \t]*(`{3,}|~{3,})(.*)$")
	// docsATXRe is an ATX heading; group 2 is its text, closing #s removed.
	docsATXRe = regexp.MustCompile(`^ {0,3}(#{1,6})(?:[ \t]+(.*?))??(?:[ \t]+#+)?[ \t]*$`)
	// docsSetextRe underlines the previous line as a heading.
	docsSetextRe = regexp.MustCompile(`^ {0,3}(?:=+|-+)[ \t]*$`)
	// docsNotParagraphRe starts a line that cannot be a setext heading's text.
	docsNotParagraphRe = regexp.MustCompile(`^(?:[ \t]*(?:[-*+>|]|\d+[.)])(?:[ \t]|$)|[ \t]*\|| {0,3}#)`)
	// docsInlineRe is the "](target "title")" of an inline link or image.
	docsInlineRe = regexp.MustCompile(`\]\([ \t\n]*(<[^<>\n]*>|[^ \t\n()]*(?:\([^ \t\n()]*\)[^ \t\n()]*)*)(?:[ \t\n]+(?:"[^"]*"|'[^']*'|\([^()]*\)))?[ \t\n]*\)`)
	// docsRefDefRe is a link reference definition, "[label]: target".
	docsRefDefRe = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:[ \t]*(<[^<>]*>|\S+)`)
	// docsHTMLAnchorRe is an HTML element with an id or name to link to.
	docsHTMLAnchorRe = regexp.MustCompile(`<[a-zA-Z][^>]*\s(?:id|name)="([^"]+)"`)
	// docsSchemeRe starts a URL with a scheme (https:, mailto:, ...).
	docsSchemeRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	// docsLinkTextRe is a link or image in heading text; group 1 is its text.
	docsLinkTextRe = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	// docsTagRe is an HTML tag in heading text.
	docsTagRe = regexp.MustCompile(`<[^>]*>`)
	// docsSlugDropRe is what GitHub drops from a heading's text for its id:
	// everything but letters, marks, digits, connector punctuation (_),
	// spaces and hyphens.
	docsSlugDropRe = regexp.MustCompile(`[^\p{L}\p{M}\p{N}\p{Pc} -]`)
)

// docsSlug returns the id GitHub gives a heading with this Markdown text,
// before duplicates are numbered: its rendered text lower-cased, punctuation
// but - and _ dropped, each space a hyphen.
func docsSlug(heading string) string {
	s := docsLinkTextRe.ReplaceAllString(heading, "$1")
	s = docsTagRe.ReplaceAllString(s, "")
	s = strings.ToLower(s)
	s = docsSlugDropRe.ReplaceAllString(s, "")
	return strings.ReplaceAll(s, " ", "-")
}

// docsParse reads a Markdown document's link targets and heading anchors.
// Links inside code spans and fenced code blocks are not links, and lines
// there are not headings. Indented code blocks are read as text, which can
// only report a link too many. Anchors are numbered as GitHub numbers repeated
// headings: "x", "x-1", "x-2".
func docsParse(src string) docsDoc {
	doc := docsDoc{anchors: map[string]bool{}}
	occurrences := map[string]int{}
	addHeading := func(text string) {
		base := docsSlug(strings.TrimSpace(text))
		slug := base
		for {
			if _, seen := occurrences[slug]; !seen {
				break
			}
			occurrences[base]++
			slug = fmt.Sprintf("%s-%d", base, occurrences[base])
		}
		occurrences[slug] = 0
		doc.anchors[slug] = true
	}

	lines := strings.Split(src, "\n")
	var fence string // the opening fence while inside a fenced block
	var block []string
	blockStart := 0 // 0-based index of block's first line
	flush := func() {
		if len(block) > 0 {
			doc.links = append(doc.links, docsBlockLinks(block, blockStart)...)
		}
		block = nil
	}
	prevParagraph := false // the previous line could be a setext heading's text
	for i, line := range lines {
		if fence != "" {
			if m := docsFenceRe.FindStringSubmatch(line); m != nil && m[1][0] == fence[0] &&
				len(m[1]) >= len(fence) && strings.TrimSpace(m[2]) == "" {
				fence = ""
			}
			continue
		}
		if m := docsFenceRe.FindStringSubmatch(line); m != nil && !(m[1][0] == '`' && strings.Contains(m[2], "`")) {
			flush()
			fence = m[1]
			prevParagraph = false
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			prevParagraph = false
			continue
		}
		for _, m := range docsHTMLAnchorRe.FindAllStringSubmatch(line, -1) {
			doc.anchors[m[1]] = true
		}
		if m := docsATXRe.FindStringSubmatch(line); m != nil {
			flush()
			addHeading(docsStripCode(m[2]))
			prevParagraph = false
			continue
		}
		if prevParagraph && docsSetextRe.MatchString(line) {
			// The previous line, already in block, is the heading's text.
			addHeading(docsStripCode(lines[i-1]))
			flush()
			prevParagraph = false
			continue
		}
		if len(block) == 0 {
			blockStart = i
		}
		block = append(block, line)
		prevParagraph = !docsNotParagraphRe.MatchString(line)
	}
	flush()
	return doc
}

// docsStripCode removes the backticks of code spans, keeping their text.
func docsStripCode(s string) string {
	return strings.ReplaceAll(s, "`", "")
}

// docsBlockLinks returns the link targets of a block of consecutive non-blank
// lines outside code fences, first at index start of the file's lines. Code
// spans, which may run over several lines of a block, are blanked first.
func docsBlockLinks(block []string, start int) []docsLink {
	text := docsBlankCodeSpans(strings.Join(block, "\n"))
	lineOf := func(offset int) int {
		return start + 1 + strings.Count(text[:offset], "\n")
	}
	var links []docsLink
	for _, m := range docsInlineRe.FindAllStringSubmatchIndex(text, -1) {
		links = append(links, docsLink{line: lineOf(m[0]), target: text[m[2]:m[3]]})
	}
	for i, line := range strings.Split(text, "\n") {
		if m := docsRefDefRe.FindStringSubmatch(line); m != nil {
			links = append(links, docsLink{line: start + 1 + i, target: m[1]})
		}
	}
	slices.SortStableFunc(links, func(a, b docsLink) int { return a.line - b.line })
	return links
}

// docsBlankCodeSpans replaces every code span of a paragraph, backticks
// included, with spaces (newlines kept), as CommonMark delimits them: a run
// of n backticks up to the next run of exactly n. A run with no match is
// literal text.
func docsBlankCodeSpans(s string) string {
	b := []byte(s)
	runAt := func(i int) int { // length of the backtick run at i
		n := 0
		for i+n < len(b) && b[i+n] == '`' {
			n++
		}
		return n
	}
	for i := 0; i < len(b); {
		if b[i] != '`' {
			i++
			continue
		}
		n := runAt(i)
		end := -1
		for j := i + n; j < len(b); {
			if b[j] != '`' {
				j++
				continue
			}
			m := runAt(j)
			if m == n {
				end = j + m
				break
			}
			j += m
		}
		if end < 0 {
			i += n
			continue
		}
		for k := i; k < end; k++ {
			if b[k] != '\n' {
				b[k] = ' '
			}
		}
		i = end
	}
	return string(b)
}

// docsSkipDir reports whether the walk skips a directory of this name: one
// of docsSkipDirs, or hidden (.git, editors' and tools' state) but for
// .github, whose Markdown GitHub renders.
func docsSkipDir(name string) bool {
	return docsSkipDirs[name] || (strings.HasPrefix(name, ".") && name != ".github")
}

// docsCheckTree parses every Markdown file under root (but in directories
// docsSkipDir skips) and returns one line per broken link, as
// "file:line: "target": reason", in file and line order.
func docsCheckTree(root string) ([]string, error) {
	docs := map[string]docsDoc{} // by absolute path, parsed on first use
	load := func(path string) (docsDoc, error) {
		if d, ok := docs[path]; ok {
			return d, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return docsDoc{}, err
		}
		d := docsParse(string(b))
		docs[path] = d
		return d, nil
	}

	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && docsSkipDir(d.Name()) {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	var problems []string
	for _, file := range files {
		doc, err := load(file)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(root, file)
		for _, l := range doc.links {
			if reason := docsCheckTarget(root, file, l.target, load); reason != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: %q: %s", filepath.ToSlash(rel), l.line, l.target, reason))
			}
		}
	}
	return problems, nil
}

// docsCheckTarget returns why a link target in file does not resolve, or ""
// when it does or is not checked (a URL with a scheme, such as https: or
// mailto:). A path is relative to file's directory, or to root with a
// leading /; an anchor must be a heading's id in a Markdown target.
func docsCheckTarget(root, file, target string, load func(string) (docsDoc, error)) string {
	target = strings.TrimSuffix(strings.TrimPrefix(target, "<"), ">")
	if docsSchemeRe.MatchString(target) || strings.HasPrefix(target, "//") {
		return ""
	}
	path, anchor, hasAnchor := strings.Cut(target, "#")
	path, _, _ = strings.Cut(path, "?")
	path, err := url.PathUnescape(path)
	if err != nil {
		return "bad escape in path"
	}
	dest := file
	switch {
	case strings.HasPrefix(path, "/"):
		dest = filepath.Join(root, filepath.FromSlash(path))
	case path != "":
		dest = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
	}
	if rel, err := filepath.Rel(root, dest); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "outside the repository"
	}
	info, err := os.Stat(dest)
	if err != nil {
		return "no such file or directory"
	}
	if !hasAnchor {
		return ""
	}
	if info.IsDir() {
		dest = filepath.Join(dest, "README.md")
		if _, err := os.Stat(dest); err != nil {
			return "anchor into a directory without README.md"
		}
	}
	if !strings.HasSuffix(dest, ".md") {
		return "" // line anchors of code files and the like are not checked
	}
	anchor, err = url.PathUnescape(anchor)
	if err != nil {
		return "bad escape in anchor"
	}
	doc, err := load(dest)
	if err != nil {
		return err.Error()
	}
	if !doc.anchors[anchor] {
		rel, _ := filepath.Rel(root, dest)
		return fmt.Sprintf("no heading of %s has the anchor #%s", filepath.ToSlash(rel), anchor)
	}
	return ""
}
