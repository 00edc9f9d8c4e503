package main

import (
	"os"
	"testing"

	"github.com/fpmq/fpmq/services/internal/envhelp"
)

// TestREADMEConfiguration fails when a configuration table of README.md
// differs from what -h prints (the envconfig tags of the daemon's, dead's
// and the ops commands' settings). With FPMQ_UPDATE_DOCS=1 (make docs) it
// rewrites the tables instead.
func TestREADMEConfiguration(t *testing.T) {
	msg, err := envhelp.SyncFile("README.md", os.Getenv("FPMQ_UPDATE_DOCS") == "1",
		envhelp.Block{Name: "daemon", Spec: &config{}},
		envhelp.Block{Name: "dead", Spec: &deadConfig{}},
		envhelp.Block{Name: "ops", Spec: &opsConfig{}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if msg != "" {
		t.Error(msg)
	}
}
