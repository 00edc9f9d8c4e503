package envhelp

import (
	"fmt"
	"os"
	"strings"
)

// Block is one generated table of a Markdown document: Markdown's table of
// Spec's variables, between a line "<!-- env NAME -->" and the next line
// "<!-- /env -->", with a blank line on each side of the table.
type Block struct {
	Name string // the block's name in its opening line: daemon, dead, ...
	Spec any    // a pointer to the command's configuration struct, as for Markdown
}

// blockOpen and blockClose are the lines around a block; blockOpen's %s is
// the block's name.
const (
	blockOpen  = "<!-- env %s -->"
	blockClose = "<!-- /env -->"
)

// Sync returns doc, a Markdown document, with each of blocks made what its
// Spec gives, and one line per difference it found, as a diff names them:
// the block's name and variable, the document's row after "-" and the
// code's after "+". No difference: synced is doc. It returns an error for a
// block whose opening line doc has not exactly once, or has without a
// closing line after it, and Markdown's errors.
func Sync(doc string, blocks []Block) (synced string, diffs []string, err error) {
	synced = doc
	for _, bl := range blocks {
		var table strings.Builder
		if err := Markdown(&table, bl.Spec); err != nil {
			return doc, nil, fmt.Errorf("block %s: %w", bl.Name, err)
		}
		want := "\n" + table.String() + "\n"
		start, end, err := blockBounds(synced, bl.Name)
		if err != nil {
			return doc, nil, err
		}
		if have := synced[start:end]; have != want {
			diffs = append(diffs, diffRows(bl.Name, have, want)...)
			synced = synced[:start] + want + synced[end:]
		}
	}
	return synced, diffs, nil
}

// blockBounds returns where the content of block name lies in doc: from
// just after its opening line's newline to the start of its closing line.
func blockBounds(doc, name string) (start, end int, err error) {
	open := "\n" + fmt.Sprintf(blockOpen, name) + "\n"
	switch strings.Count("\n"+doc, open) {
	case 0:
		return 0, 0, fmt.Errorf("no line %q", strings.TrimSpace(open))
	case 1:
	default:
		return 0, 0, fmt.Errorf("line %q more than once", strings.TrimSpace(open))
	}
	// doc is searched with a newline in front, so that its first line
	// counts: an index in "\n"+doc is one past the same index in doc, which
	// makes these indexes the starts of the lines after the newlines found.
	start = strings.Index("\n"+doc, open) + len(open) - 1
	n := strings.Index("\n"+doc[start:]+"\n", "\n"+blockClose+"\n")
	if n < 0 {
		return 0, 0, fmt.Errorf("no line %q after %q", blockClose, strings.TrimSpace(open))
	}
	return start, start + n, nil
}

// diffRows returns the differences between have, a block's content in the
// document, and want, the code's, row by row: a row is a line that starts
// with "|", named by its first cell. A variable's row that differs comes
// first, then the code's rows the document lacks, then the document's the
// code lacks; a single line says when only the order or the other lines
// differ.
func diffRows(block, have, want string) []string {
	haveRows, haveOrder := tableRows(have)
	wantRows, wantOrder := tableRows(want)
	var diffs []string
	for _, name := range wantOrder {
		w := wantRows[name]
		switch h, ok := haveRows[name]; {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: %s is missing from the document\n  + %s", block, name, w))
		case h != w:
			diffs = append(diffs, fmt.Sprintf("%s: %s\n  - %s\n  + %s", block, name, h, w))
		}
	}
	for _, name := range haveOrder {
		if _, ok := wantRows[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: %s is not in the code\n  - %s", block, name, haveRows[name]))
		}
	}
	if len(diffs) == 0 {
		diffs = append(diffs, fmt.Sprintf("%s: the rows are the same, but their order or the lines around them differ", block))
	}
	return diffs
}

// tableRows returns the rows of a block's content by name, the first
// cell's text without backticks, and the names in order. A header row and
// its delimiter row count as rows too ("variable", "---").
func tableRows(content string) (rows map[string]string, order []string) {
	rows = map[string]string{}
	for line := range strings.SplitSeq(content, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		name := strings.Trim(first, " `")
		if _, dup := rows[name]; !dup {
			order = append(order, name)
		}
		rows[name] = line
	}
	return rows, order
}

// SyncFile checks the blocks of the Markdown file at path, as Sync does.
// With update, it writes the file back with the blocks Sync made, and
// returns no message; without, it changes nothing and returns a message
// naming each difference, or "" when there is none. Its errors are Sync's
// and the file's, prefixed with path.
func SyncFile(path string, update bool, blocks ...Block) (message string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	synced, diffs, err := Sync(string(b), blocks)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if len(diffs) == 0 {
		return "", nil
	}
	if update {
		info, err := os.Stat(path)
		if err != nil {
			return "", err
		}
		return "", os.WriteFile(path, []byte(synced), info.Mode().Perm())
	}
	return fmt.Sprintf("%s: its configuration tables differ from the code's envconfig tags; run make docs to rewrite them (- the document, + the code):\n%s",
		path, strings.Join(diffs, "\n")), nil
}
