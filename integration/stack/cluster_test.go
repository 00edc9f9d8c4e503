package stack

import (
	"slices"
	"testing"
)

func TestParseRunningNodes(t *testing.T) {
	out := "Cluster status of node rabbit@rabbitmq-3 ...\n" +
		`{"running_nodes":["rabbit@rabbitmq-3","rabbit@rabbitmq-1"],"disk_nodes":["rabbit@rabbitmq-1","rabbit@rabbitmq-2","rabbit@rabbitmq-3"]}` + "\n"
	got, err := parseRunningNodes(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"rabbit@rabbitmq-1", "rabbit@rabbitmq-3"}; !slices.Equal(got, want) {
		t.Errorf("running nodes %q, want %q", got, want)
	}
	if _, err := parseRunningNodes("Error: unable to perform an operation on node"); err == nil {
		t.Error("no error for output without JSON")
	}
}
