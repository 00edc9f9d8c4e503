package deadletter

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args []string
		want Command
	}{
		{[]string{"list"}, Command{Action: ActionList}},
		{[]string{"list", "--reason", "rejected", "-job=send-mail", "--older-than", "7d", "--newer-than=30d", "--json"},
			Command{Action: ActionList, JSON: true, Filter: Filter{Reason: "rejected", Name: "send-mail", OlderThan: 7 * 24 * time.Hour, NewerThan: 30 * 24 * time.Hour}}},
		{[]string{"show", "m1"}, Command{Action: ActionShow, Filter: Filter{IDs: []string{"m1"}}}},
		{[]string{"show", "m1", "--json", "m2"}, Command{Action: ActionShow, JSON: true, Filter: Filter{IDs: []string{"m1", "m2"}}}},
		{[]string{"replay", "m1", "m2", "--rate", "5/s", "--queue", "commands"},
			Command{Action: ActionReplay, Rate: 5, Queue: "commands", Filter: Filter{IDs: []string{"m1", "m2"}}}},
		{[]string{"replay", "--all"}, Command{Action: ActionReplay, All: true}},
		{[]string{"replay", "--reason", "rejected", "--older-than", "2h", "--rate=30/m"},
			Command{Action: ActionReplay, Rate: 0.5, Filter: Filter{Reason: "rejected", OlderThan: 2 * time.Hour}}},
		{[]string{"purge", "--yes", "m1"}, Command{Action: ActionPurge, Yes: true, Filter: Filter{IDs: []string{"m1"}}}},
		{[]string{"purge", "--all", "--yes"}, Command{Action: ActionPurge, All: true, Yes: true}},
		// After "--", everything is an id, even what looks like a flag.
		{[]string{"purge", "--yes", "--", "--all", "-x"}, Command{Action: ActionPurge, Yes: true, Filter: Filter{IDs: []string{"--all", "-x"}}}},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.args)
		if err != nil {
			t.Errorf("ParseArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseArgs(%q):\n got %+v\nwant %+v", tt.args, got, tt.want)
		}
	}
}

func TestParseArgsErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"lsit"},
		{"list", "m1"},                   // list takes no ids
		{"list", "--rate", "5"},          // replay's flag
		{"list", "--older-than", "soon"}, // not an age
		{"list", "--older-than", "2d", "--newer-than", "1d"},
		{"show"},
		{"show", "--reason", "rejected"},
		{"replay"},
		{"replay", "--all", "--reason", "rejected"},
		{"replay", "m1", "--all"},
		{"replay", "m1", "--older-than", "1h"},
		{"replay", "--all", "--rate", "0"},
		{"replay", "--all", "--rate", "5/d"},
		{"replay", "--all", "--yes"},
		{"purge"},
		{"purge", "--all", "--queue", "q"},
		{"purge", ""},
	}
	for _, args := range tests {
		if c, err := ParseArgs(args); !errors.Is(err, ErrUsage) {
			t.Errorf("ParseArgs(%q) = %+v, %v; want an error wrapping ErrUsage", args, c, err)
		}
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"list", "-h"}, {"replay", "m1", "--help"}} {
		if _, err := ParseArgs(args); !errors.Is(err, ErrHelp) {
			t.Errorf("ParseArgs(%q): %v, want ErrHelp", args, err)
		}
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		in       string
		interval time.Duration // 0: an error
	}{
		{"10", 100 * time.Millisecond},
		{"10/s", 100 * time.Millisecond},
		{"0.5/sec", 2 * time.Second},
		{"30/m", 2 * time.Second},
		{"60/min", time.Second},
		{"3600/h", time.Second},
		{"0/s", 0},
		{"-1/s", 0},
		{"fast", 0},
		{"5/d", 0},
		{"NaN", 0},
	}
	for _, tt := range tests {
		var r Rate
		err := r.Set(tt.in)
		if tt.interval == 0 {
			if err == nil {
				t.Errorf("Rate.Set(%q) = %v, want an error", tt.in, r)
			}
			continue
		}
		if err != nil || r.Interval() != tt.interval {
			t.Errorf("Rate.Set(%q): interval %v, %v; want %v", tt.in, r.Interval(), err, tt.interval)
		}
	}
	if got := Rate(0).Interval(); got != 0 {
		t.Errorf("Rate(0).Interval() = %v, want 0 (no limit)", got)
	}
}
