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
