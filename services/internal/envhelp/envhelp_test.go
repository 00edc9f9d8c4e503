package envhelp

import (
	"strings"
	"testing"
)

func TestPrint(t *testing.T) {
	var spec struct {
		URL     string `envconfig:"AMQP_URL" required:"true" desc:"the broker"`
		Queue   string `envconfig:"AMQP_QUEUE" default:"commands" desc:"the queue"`
		private int
	}
	var out strings.Builder
	if err := Print(&out, &spec); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"  VARIABLE    DEFAULT   DESCRIPTION\n" +
		"  AMQP_URL              the broker\n" +
		"  AMQP_QUEUE  commands  the queue\n"
	if out.String() != want {
		t.Errorf("Print wrote\n%s\nwant\n%s", out.String(), want)
	}
}

// Connection is settings declared once and embedded in each command's
// configuration: they are listed where they are embedded. Its type must be
// exported, or envconfig skips it.
type Connection struct {
	URL     string `envconfig:"AMQP_URL" required:"true" desc:"the broker"`
	Address string `envconfig:"AMQP_ADDRESSES" desc:"its nodes"`
}

func TestPrintEmbedded(t *testing.T) {
	var spec struct {
		Connection
		Queue string `envconfig:"AMQP_QUEUE" default:"commands" desc:"the queue"`
	}
	var out strings.Builder
	if err := Print(&out, &spec); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"  VARIABLE        DEFAULT   DESCRIPTION\n" +
		"  AMQP_URL                  the broker\n" +
		"  AMQP_ADDRESSES            its nodes\n" +
		"  AMQP_QUEUE      commands  the queue\n"
	if out.String() != want {
		t.Errorf("Print wrote\n%s\nwant\n%s", out.String(), want)
	}
}

func TestPrintRejectsANonStruct(t *testing.T) {
	var n int
	if err := Print(&strings.Builder{}, &n); err == nil {
		t.Error("Print(&int) succeeded, want envconfig's error")
	}
}

func TestMarkdown(t *testing.T) {
	var spec struct {
		Connection
		Queue   string `envconfig:"AMQP_QUEUE" default:"commands" desc:"the queue"`
		Odd     string `envconfig:"ODD" default:"a|b" desc:"a | b, *not* [a link](x) nor <b>, $_POST, x_y, _z_ and \\ ~ & kept"`
		Ticks   string "envconfig:\"TICKS\" default:\"`x`\""
		Skipped string `ignored:"true"`
	}
	var out strings.Builder
	if err := Markdown(&out, &spec); err != nil {
		t.Fatal(err)
	}
	want := "" +
		"| variable | default | meaning |\n" +
		"|---|---|---|\n" +
		"| `AMQP_URL` | (required) | the broker |\n" +
		"| `AMQP_ADDRESSES` | (none) | its nodes |\n" +
		"| `AMQP_QUEUE` | `commands` | the queue |\n" +
		"| `ODD` | `a\\|b` | a \\| b, \\*not\\* \\[a link\\](x) nor \\<b>, \\$\\_POST, x_y, \\_z\\_ and \\\\ \\~ \\& kept |\n" +
		"| `TICKS` | `` `x` `` |  |\n"
	if out.String() != want {
		t.Errorf("Markdown wrote\n%s\nwant\n%s", out.String(), want)
	}
}

func TestMarkdownRequiredWinsOverDefault(t *testing.T) {
	var spec struct {
		A string `envconfig:"A" default:"x" required:"true" desc:"a"`
		B string `envconfig:"B" default:"y" required:"false" desc:"b"`
	}
	var out strings.Builder
	if err := Markdown(&out, &spec); err != nil {
		t.Fatal(err)
	}
	if want := "| `A` | (required) | a |\n| `B` | `y` | b |\n"; !strings.HasSuffix(out.String(), want) {
		t.Errorf("Markdown wrote\n%s\nwant it to end with\n%s", out.String(), want)
	}
}

func TestMarkdownErrors(t *testing.T) {
	var multiline struct {
		A string `envconfig:"A" desc:"one\ntwo"`
	}
	var badRequired struct {
		A string `envconfig:"A" required:"yes"`
	}
	var n int
	for name, spec := range map[string]any{"multi-line desc": &multiline, "bad required": &badRequired, "not a struct": &n} {
		var out strings.Builder
		if err := Markdown(&out, spec); err == nil {
			t.Errorf("%s: Markdown succeeded, want an error", name)
		}
		if out.Len() != 0 {
			t.Errorf("%s: Markdown wrote %q before its error", name, out.String())
		}
	}
}
