package main

import (
	"bytes"
	"image/png"
	"testing"
)

func TestWritePlot(t *testing.T) {
	var buf bytes.Buffer
	pts := []point{{1, 900, 850, 950, true}, {2, 1700, 1600, 1800, true}, {5, 3500, 3400, 3600, true}, {10, 3600, 3500, 3700, true}, {20, 3550, 3400, 3700, true}, {50, 3400, 3300, 3500, true}}
	if err := writePlot(&buf, "throughput", pts, 7800, "CPU limit"); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&buf)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != plotW || b.Dy() != plotH {
		t.Errorf("size %v", b)
	}
	if err := writePlot(&bytes.Buffer{}, "empty", []point{{1, 0, 0, 0, false}}, 0, ""); err == nil {
		t.Error("a plot without figures did not fail")
	}
}

func TestNiceStep(t *testing.T) {
	for raw, want := range map[float64]float64{0.7: 1, 130: 200, 800: 1000, 4100: 5000, 1: 1} {
		if got := niceStep(raw); got != want {
			t.Errorf("niceStep(%g) = %g, want %g", raw, got, want)
		}
	}
}
