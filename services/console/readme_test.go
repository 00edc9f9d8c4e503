package main

import (
	"os"
	"testing"

	"github.com/fpmq/fpmq/services/internal/envhelp"
)

// TestREADMEConfiguration fails when the configuration table of README.md
// differs from what -h prints. With FPMQ_UPDATE_DOCS=1 (make docs) it
// rewrites the table instead.
func TestREADMEConfiguration(t *testing.T) {
	msg, err := envhelp.SyncFile("README.md", os.Getenv("FPMQ_UPDATE_DOCS") == "1", envhelp.Block{Name: "console", Spec: &config{}})
	if err != nil {
		t.Fatal(err)
	}
	if msg != "" {
		t.Error(msg)
	}
}
