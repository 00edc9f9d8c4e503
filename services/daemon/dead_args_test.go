package main

import (
	"errors"
	"flag"
	"reflect"
	"testing"
	"time"

	"github.com/fpmq/fpmq/services/internal/deadletter"
)

func TestParseDeadArgs(t *testing.T) {
	tests := []struct {
		args []string
		want deadArgs
	}{
		{[]string{"list"}, deadArgs{Action: actionList}},
		{[]string{"list", "--reason", "rejected", "-job=send-mail", "--older-than", "7d", "--newer-than=30d", "--json"},
			deadArgs{Action: actionList, JSON: true, Filter: deadletter.Filter{Reason: "rejected", Name: "send-mail", OlderThan: 7 * 24 * time.Hour, NewerThan: 30 * 24 * time.Hour}}},
		{[]string{"show", "m1"}, deadArgs{Action: actionShow, Filter: deadletter.Filter{IDs: []string{"m1"}}}},
		{[]string{"show", "m1", "--json", "m2"}, deadArgs{Action: actionShow, JSON: true, Filter: deadletter.Filter{IDs: []string{"m1", "m2"}}}},
		{[]string{"replay", "m1", "m2", "--rate", "5/s", "--queue", "commands"},
			deadArgs{Action: actionReplay, Rate: 5, Queue: "commands", Filter: deadletter.Filter{IDs: []string{"m1", "m2"}}}},
		{[]string{"replay", "--all"}, deadArgs{Action: actionReplay, All: true}},
		{[]string{"replay", "--reason", "rejected", "--older-than", "2h", "--rate=30/m"},
			deadArgs{Action: actionReplay, Rate: 0.5, Filter: deadletter.Filter{Reason: "rejected", OlderThan: 2 * time.Hour}}},
		{[]string{"purge", "--yes", "m1"}, deadArgs{Action: actionPurge, Yes: true, Filter: deadletter.Filter{IDs: []string{"m1"}}}},
		{[]string{"purge", "--all", "--yes"}, deadArgs{Action: actionPurge, All: true, Yes: true}},
		// After "--", everything is an id, even what looks like a flag.
		{[]string{"purge", "--yes", "--", "--all", "-x"}, deadArgs{Action: actionPurge, Yes: true, Filter: deadletter.Filter{IDs: []string{"--all", "-x"}}}},
	}
	for _, tt := range tests {
		got, err := parseDeadArgs(tt.args)
		if err != nil {
			t.Errorf("parseDeadArgs(%q): %v", tt.args, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseDeadArgs(%q):\n got %+v\nwant %+v", tt.args, got, tt.want)
		}
	}
}

func TestParseDeadArgsErrors(t *testing.T) {
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
		if c, err := parseDeadArgs(args); !errors.Is(err, errUsage) {
			t.Errorf("parseDeadArgs(%q) = %+v, %v; want an error wrapping errUsage", args, c, err)
		}
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"list", "-h"}, {"replay", "m1", "--help"}} {
		if _, err := parseDeadArgs(args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("parseDeadArgs(%q): %v, want flag.ErrHelp", args, err)
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
		var r rateFlag
		err := r.Set(tt.in)
		if tt.interval == 0 {
			if err == nil {
				t.Errorf("rateFlag.Set(%q) = %v, want an error", tt.in, r)
			}
			continue
		}
		if interval := deadletter.Rate(r).Interval(); err != nil || interval != tt.interval {
			t.Errorf("rateFlag.Set(%q): interval %v, %v; want %v", tt.in, interval, err, tt.interval)
		}
	}
	if r := rateFlag(0.5); r.String() != "0.5/s" {
		t.Errorf("rateFlag(0.5).String() = %q, want 0.5/s", r.String())
	}
}

func TestParseAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"90m", 90 * time.Minute},
		{"36h", 36 * time.Hour},
		{"7d", 7 * 24 * time.Hour},
		{"1d12h", 36 * time.Hour},
		{"1.5h", 90 * time.Minute},
		{"0d", 0},
		{"0s", 0},
		{"-1h", 0},
		{"1d-2h", 0},
		{"d", 0},
		{"7days", 0},
		{"x1d", 0},
		{"", 0},
		{"99999999999d", 0},
	}
	for _, tt := range tests {
		got, err := parseAge(tt.in)
		if tt.want == 0 {
			if err == nil {
				t.Errorf("parseAge(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
