package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0"},
		{12345.6, "12346"},
		{1000, "1000"},
		{999.94, "999.9"},
		{42.123, "42.12"},
		{1, "1.00"},
		{0.6049, "0.605"},
		{-3.14159, "-3.14"},
		{math.NaN(), "n/a"},
	}
	for _, tc := range tests {
		if got := formatValue(tc.v); got != tc.want {
			t.Errorf("formatValue(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		t    target
		want string
	}{
		{target{values: []float64{0.7, 0.5, 0.65}, limit: 0.6}, "PASS"},
		{target{values: []float64{0.6}, limit: 0.6}, "PASS"},
		{target{values: []float64{0.59, 0.9, 0.1}, limit: 0.6}, "FAIL"},
		{target{values: []float64{31}, limit: 30, atMost: true}, "FAIL"},
		{target{values: []float64{30, 2, 40}, limit: 30, atMost: true}, "PASS"},
		{target{values: []float64{math.NaN()}, limit: 1}, "n/a"},
		{target{limit: 1}, "n/a"},
	}
	for _, tc := range tests {
		if got := tc.t.verdict(); got != tc.want {
			t.Errorf("verdict of %v against %v (at most %v) = %s, want %s", tc.t.values, tc.t.limit, tc.t.atMost, got, tc.want)
		}
	}
}

func sampleReport() *report {
	r := &report{title: "title", header: []field{{"machine", "a box"}}}
	for _, v := range []float64{100, 300, 200} {
		r.add("s1", "rate", "1/s", v)
	}
	r.add("s2", "rss", "MiB", 12.5)
	r.missing("s2", "rss", "MiB", "no /proc")
	r.add("s2", "rss", "MiB", 14)
	r.targets = []target{
		{name: "rss", unit: "MiB", values: r.values("s2", "rss"), limit: 30, atMost: true},
		{name: "|x|", values: []float64{1}, limit: 2, atMost: true},
	}
	return r
}

func TestReportCollectsByFigure(t *testing.T) {
	r := sampleReport()
	if len(r.figures) != 2 {
		t.Fatalf("%d figures, want 2", len(r.figures))
	}
	v := r.values("s2", "rss")
	if len(v) != 3 || v[0] != 12.5 || !math.IsNaN(v[1]) || v[2] != 14 {
		t.Errorf("rss values = %v, want [12.5 NaN 14]", v)
	}
	if r.values("s1", "nothing") != nil {
		t.Error("an unknown figure has values")
	}
}

func TestWriteText(t *testing.T) {
	var buf bytes.Buffer
	sampleReport().writeText(&buf)
	out := buf.String()
	for _, want := range []string{
		"title\n",
		"machine    a box\n",
		"s1\n",
		"  rate ", "200", "100", "300",
		"13.25", // the median of 12.5 and 14; NaN left out
		"≤ 30 MiB", "PASS",
		"n/a: s2, rss: no /proc",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteMarkdown(t *testing.T) {
	var buf bytes.Buffer
	sampleReport().writeMarkdown(&buf)
	out := buf.String()
	for _, want := range []string{
		"### title\n",
		"- machine: a box\n",
		"| **s1** | | | | |\n",
		"| rate | 200.0 | 100.0 | 300.0 | 1/s |\n",
		"| rss | 13.25 | 12.50 | 14.00 | ≤ 30 MiB | **PASS** |\n",
		"| \\|x\\| | 1.00 | 1.00 | 1.00 | ≤ 2 | **PASS** |\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestWriteCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().writeCSV(&buf, 3); err != nil {
		t.Fatal(err)
	}
	want := "kind,section,name,unit,median,min,max,limit,verdict,rep1,rep2,rep3,note\n" +
		"figure,s1,rate,1/s,200.000,100.000,300.000,,,100.000,300.000,200.000,\n" +
		"figure,s2,rss,MiB,13.250,12.500,14.000,,,12.500,,14.000,no /proc\n" +
		"target,,rss,MiB,13.250,12.500,14.000,≤ 30 MiB,PASS,12.500,,14.000,\n" +
		"target,,|x|,,1.000,1.000,1.000,≤ 2,PASS,1.000,,,\n"
	if got := buf.String(); got != want {
		t.Errorf("csv:\n%s\nwant:\n%s", got, want)
	}
}
