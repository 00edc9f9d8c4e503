package phpfpm

import (
	"strings"
	"testing"
)

// TestParseStatusCountsTheListedProcesses: php-fpm's summary said 11
// processes, all active, for a pool of 6 whose daemon kept its 5
// connections alive (the case TestDeployedDefaults met); the list of
// processes has the truth: 6 children, 5 serving kept connections, the
// status request's own child running, none idle. A child waiting for a
// connection counts as idle.
func TestParseStatusCountsTheListedProcesses(t *testing.T) {
	page := `{"pool":"commands","process manager":"static","accepted conn":41,
		"listen queue":0,"max listen queue":0,"idle processes":0,"active processes":11,
		"total processes":11,"max children reached":0,"slow requests":0,"processes":[
		{"pid":7,"state":"Running","requests":7},
		{"pid":8,"state":"Finishing","requests":7},
		{"pid":9,"state":"Reading headers","requests":7},
		{"pid":10,"state":"Finishing","requests":6},
		{"pid":11,"state":"Finishing","requests":7},
		{"pid":12,"state":"Idle","requests":7}]}`
	s, err := ParseStatus([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	if s.TotalProcesses != 6 || s.ActiveProcesses != 5 || s.IdleProcesses != 1 {
		t.Errorf("processes %g, active %g, idle %g; want 6, 5, 1 from the list", s.TotalProcesses, s.ActiveProcesses, s.IdleProcesses)
	}
	if s.AcceptedConn != 41 {
		t.Errorf("accepted conn %g, want 41 from the summary", s.AcceptedConn)
	}
}

// TestParseStatusWithoutTheList keeps the summary's counts when the page
// has no list (a status page asked without full).
func TestParseStatusWithoutTheList(t *testing.T) {
	s, err := ParseStatus([]byte(`{"idle processes":2,"active processes":1,"total processes":3,"listen queue":4}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.TotalProcesses != 3 || s.ActiveProcesses != 1 || s.IdleProcesses != 2 || s.ListenQueue != 4 {
		t.Errorf("got %+v, want the summary's counts", s)
	}
}

func TestParseStatusRejectsATruncatedPage(t *testing.T) {
	page := `{"pool":"commands","processes":[{"pid":7,"state":"Idle"}]}`
	if _, err := ParseStatus([]byte(page[:len(page)-10])); err == nil || !strings.Contains(err.Error(), "php-fpm status page") {
		t.Errorf("ParseStatus of a truncated page: %v, want an error naming the status page", err)
	}
}
