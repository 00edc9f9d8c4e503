package logging

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewJSON(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "warn", FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hidden")
	log.Warn().Int64("number", 42).Msg("shown")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want only the warning: %q", len(lines), buf.String())
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatalf("auto format on a non-terminal is not JSON: %v", err)
	}
	if entry["message"] != "shown" || entry["number"] != float64(42) || entry["level"] != "warn" {
		t.Errorf("unexpected entry %v", entry)
	}
}

func TestNewConsole(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, "info", FormatConsole)
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hello")
	if out := buf.String(); strings.HasPrefix(out, "{") || !strings.Contains(out, "hello") {
		t.Errorf("console output %q", out)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct{ level, format, want string }{
		{"loud", FormatJSON, `"loud"`},
		{"", FormatJSON, `""`},
		{"info", "xml", `"xml"`},
	} {
		if _, err := New(&bytes.Buffer{}, tc.level, tc.format); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %q) error = %v, want one naming %s", tc.level, tc.format, err, tc.want)
		}
	}
}
