package main

import (
	"strings"
	"testing"
)

func TestParseSamples(t *testing.T) {
	in := "direct 1 100 150 160\npipeline 2 200 260 270\ndirect 3 300 340 345\n\n"
	got, err := parseSamples(strings.NewReader(in), "direct")
	if err != nil {
		t.Fatal(err)
	}
	want := []sample{{1, 100, 150, 160}, {3, 300, 340, 345}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("parseSamples = %v, want %v", got, want)
	}
	for _, bad := range []string{"direct 1 2 3\n", "direct 1 2 x 4\n"} {
		if _, err := parseSamples(strings.NewReader(bad), "direct"); err == nil {
			t.Errorf("parseSamples(%q) did not fail", bad)
		}
	}
}
