package main

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   summary
		ok     bool
	}{
		{"none", nil, summary{}, false},
		{"only NaN", []float64{math.NaN()}, summary{}, false},
		{"one", []float64{4}, summary{4, 4, 4}, true},
		{"odd", []float64{3, 1, 2}, summary{2, 1, 3}, true},
		{"even", []float64{4, 1, 3, 2}, summary{2.5, 1, 4}, true},
		{"NaN ignored", []float64{5, math.NaN(), 1, 3}, summary{3, 1, 5}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := summarize(tc.values)
			if got != tc.want || ok != tc.ok {
				t.Errorf("summarize(%v) = %v, %v; want %v, %v", tc.values, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSummarizeKeepsItsInput(t *testing.T) {
	v := []float64{3, 1, 2}
	summarize(v)
	if v[0] != 3 || v[1] != 1 || v[2] != 2 {
		t.Errorf("summarize sorted its input: %v", v)
	}
}

func TestPercentile(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(i + 1)
	}
	tests := []struct {
		sorted []float64
		p      float64
		want   float64
	}{
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 100, 100},
		{hundred, 0.5, 1},
		{[]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}, 99, 20},
		{[]float64{7}, 99, 7},
		{[]float64{1, 2}, 50, 1},
	}
	for _, tc := range tests {
		if got := percentile(tc.sorted, tc.p); got != tc.want {
			t.Errorf("percentile(%d values, %v) = %v, want %v", len(tc.sorted), tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("percentile(nil) = %v, want NaN", got)
	}
}

func TestRatiosAreSideBySide(t *testing.T) {
	got := ratios([]float64{10, 20, 30}, []float64{5, 40})
	if len(got) != 3 || got[0] != 2 || got[1] != 0.5 || !math.IsNaN(got[2]) {
		t.Errorf("ratios = %v, want [2 0.5 NaN]", got)
	}
}
