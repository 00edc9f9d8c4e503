package stack

import (
	"reflect"
	"testing"
)

func TestParseTable(t *testing.T) {
	// rabbitmqctl separates cells with tabs; a cell may hold spaces, and a
	// warning may come before the table.
	out := "warning: something\n" +
		"daemon\ttrue\tCN=fpmq-daemon, O=test\n" +
		"caller\tfalse\t\n" +
		"\n"
	got := parseTable(out, 3)
	want := [][]string{{"daemon", "true", "CN=fpmq-daemon, O=test"}, {"caller", "false", ""}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseTable = %q, want %q", got, want)
	}
}

func TestParseQueues(t *testing.T) {
	rows := parseTable("commands\tclassic\t3\t5\t1\ncommands.dead\tquorum\t0\t0\t0\n", 5)
	got, err := parseQueues(rows)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Queue{
		"commands":      {Exists: true, Type: "classic", Ready: 3, Unacked: 5, Consumers: 1},
		"commands.dead": {Exists: true, Type: "quorum"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseQueues = %+v, want %+v", got, want)
	}
	if got["missing"].Exists {
		t.Error("a missing queue exists")
	}
	if _, err := parseQueues([][]string{{"q", "classic", "x", "0", "0"}}); err == nil {
		t.Error("parseQueues accepted a count that is not a number")
	}
}
