package envhelp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// syncSpec is the settings of the Sync tests' one block.
type syncSpec struct {
	Connection
	Queue string `envconfig:"AMQP_QUEUE" default:"commands" desc:"the queue"`
}

// syncTable is Markdown's table of syncSpec.
const syncTable = "| variable | default | meaning |\n" +
	"|---|---|---|\n" +
	"| `AMQP_URL` | (required) | the broker |\n" +
	"| `AMQP_ADDRESSES` | (none) | its nodes |\n" +
	"| `AMQP_QUEUE` | `commands` | the queue |\n"

// syncDoc returns a document with one block, named x, of content.
func syncDoc(content string) string {
	return "# Title\n\nText.\n<!-- env x -->\n" + content + "<!-- /env -->\n\nMore text.\n"
}

func TestSync(t *testing.T) {
	blocks := []Block{{Name: "x", Spec: &syncSpec{}}}
	good := syncDoc("\n" + syncTable + "\n")
	tests := []struct {
		name    string
		content string
		diffs   []string
	}{
		{"in sync", "\n" + syncTable + "\n", nil},
		{"empty", "", []string{
			"x: variable is missing from the document\n  + | variable | default | meaning |",
			"x: --- is missing from the document\n  + |---|---|---|",
			"x: AMQP_URL is missing from the document\n  + | `AMQP_URL` | (required) | the broker |",
			"x: AMQP_ADDRESSES is missing from the document\n  + | `AMQP_ADDRESSES` | (none) | its nodes |",
			"x: AMQP_QUEUE is missing from the document\n  + | `AMQP_QUEUE` | `commands` | the queue |",
		}},
		{"a description and a default differ, a row too many", "\n" + strings.NewReplacer(
			"the broker", "RabbitMQ",
			"`commands`", "`jobs`",
			"| `AMQP_QUEUE`", "| `OLD` | (none) | gone |\n| `AMQP_QUEUE`",
		).Replace(syncTable) + "\n", []string{
			"x: AMQP_URL\n  - | `AMQP_URL` | (required) | RabbitMQ |\n  + | `AMQP_URL` | (required) | the broker |",
			"x: AMQP_QUEUE\n  - | `AMQP_QUEUE` | `jobs` | the queue |\n  + | `AMQP_QUEUE` | `commands` | the queue |",
			"x: OLD is not in the code\n  - | `OLD` | (none) | gone |",
		}},
		{"no blank line after the table", "\n" + syncTable, []string{
			"x: the rows are the same, but their order or the lines around them differ",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := syncDoc(tt.content)
			synced, diffs, err := Sync(doc, blocks)
			if err != nil {
				t.Fatal(err)
			}
			if synced != good {
				t.Errorf("Sync returned\n%s\nwant\n%s", synced, good)
			}
			if strings.Join(diffs, "\n") != strings.Join(tt.diffs, "\n") {
				t.Errorf("diffs:\n%s\nwant:\n%s", strings.Join(diffs, "\n"), strings.Join(tt.diffs, "\n"))
			}
		})
	}
}

func TestSyncBlockAtTheEdges(t *testing.T) {
	// The opening line first in the document, the closing line last without
	// a newline, and other blocks around that stay as they are.
	doc := "<!-- env x -->\n<!-- /env -->\n<!-- env y -->\nkept\n<!-- /env -->"
	synced, diffs, err := Sync(doc, []Block{{Name: "x", Spec: &syncSpec{}}})
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- env x -->\n\n" + syncTable + "\n<!-- /env -->\n<!-- env y -->\nkept\n<!-- /env -->"
	if synced != want || len(diffs) == 0 {
		t.Errorf("Sync returned %d diffs and\n%s\nwant\n%s", len(diffs), synced, want)
	}
}

func TestSyncErrors(t *testing.T) {
	blocks := []Block{{Name: "x", Spec: &syncSpec{}}}
	for name, doc := range map[string]string{
		"no block":       "# Title\n<!-- env other -->\n<!-- /env -->\n",
		"not on a line":  "# Title\ntext <!-- env x -->\n<!-- /env -->\n",
		"twice":          syncDoc("") + syncDoc(""),
		"never closed":   "# Title\n<!-- env x -->\n| a |\n",
		"closed in text": "# Title\n<!-- env x -->\ntext <!-- /env -->\n",
	} {
		if _, _, err := Sync(doc, blocks); err == nil {
			t.Errorf("%s: Sync succeeded, want an error", name)
		}
	}
	var n int
	if _, _, err := Sync(syncDoc(""), []Block{{Name: "x", Spec: &n}}); err == nil {
		t.Error("Sync of a spec that is no struct succeeded, want an error")
	}
}

func TestSyncFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	stale := syncDoc("\n" + strings.Replace(syncTable, "the queue", "a queue", 1) + "\n")
	if err := os.WriteFile(path, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	block := Block{Name: "x", Spec: &syncSpec{}}

	msg, err := SyncFile(path, false, block)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{path + ": ", "run make docs", "x: AMQP_QUEUE\n  - | `AMQP_QUEUE` | `commands` | a queue |\n  + | `AMQP_QUEUE` | `commands` | the queue |"} {
		if !strings.Contains(msg, want) {
			t.Errorf("SyncFile's message\n%s\nlacks %q", msg, want)
		}
	}
	if b, _ := os.ReadFile(path); string(b) != stale {
		t.Errorf("SyncFile without update changed the file to\n%s", b)
	}

	if msg, err := SyncFile(path, true, block); err != nil || msg != "" {
		t.Fatalf("SyncFile with update = %q, %v; want no message and no error", msg, err)
	}
	if b, _ := os.ReadFile(path); string(b) != syncDoc("\n"+syncTable+"\n") {
		t.Errorf("SyncFile with update wrote\n%s", b)
	}
	if msg, err := SyncFile(path, false, block); err != nil || msg != "" {
		t.Errorf("SyncFile after the update = %q, %v; want no message and no error", msg, err)
	}

	if _, err := SyncFile(filepath.Join(t.TempDir(), "missing.md"), false, block); err == nil {
		t.Error("SyncFile of a missing file succeeded, want an error")
	}
}
