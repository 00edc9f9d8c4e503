package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// figure is one measured quantity: one value per repetition, NaN where the
// repetition could not measure it.
type figure struct {
	section, name, unit string
	values              []float64
	limit               float64 // for a target: the median must reach it; 0 for a plain figure
}

// field is one line of the report's header, such as the machine.
type field struct{ key, value string }

// report is what a run found, figures in the order first measured.
type report struct {
	title   string
	header  []field
	figures []*figure
	notes   []string
}

// set records v as the value of repetition rep (from 0) of a figure,
// creating the figure on first use; repetitions not set are NaN.
func (r *report) set(section, name, unit string, rep int, v float64) {
	f := r.figure(section, name, unit)
	for len(f.values) <= rep {
		f.values = append(f.values, math.NaN())
	}
	f.values[rep] = v
}

func (r *report) figure(section, name, unit string) *figure {
	for _, f := range r.figures {
		if f.section == section && f.name == name {
			return f
		}
	}
	f := &figure{section: section, name: name, unit: unit}
	r.figures = append(r.figures, f)
	return f
}

// values returns a figure's values, nil if it was never measured.
func (r *report) values(section, name string) []float64 {
	for _, f := range r.figures {
		if f.section == section && f.name == name {
			return f.values
		}
	}
	return nil
}

// summary is the median, minimum and maximum of a figure's values.
type summary struct{ median, min, max float64 }

// summarize returns the summary of values, NaNs left out; ok is false when
// none is left.
func summarize(values []float64) (s summary, ok bool) {
	v := slices.DeleteFunc(slices.Clone(values), math.IsNaN)
	if len(v) == 0 {
		return summary{}, false
	}
	slices.Sort(v)
	n := len(v)
	s = summary{min: v[0], max: v[n-1], median: v[n/2]}
	if n%2 == 0 {
		s.median = (v[n/2-1] + v[n/2]) / 2
	}
	return s, true
}

// ratios returns a[i]/b[i] for each repetition i: figures measured side by
// side drift together. A missing value on either side gives NaN.
func ratios(a, b []float64) []float64 {
	out := make([]float64, max(len(a), len(b)))
	for i := range out {
		out[i] = math.NaN()
		if i < len(a) && i < len(b) {
			out[i] = a[i] / b[i]
		}
	}
	return out
}

// verdict says whether a target's median reaches its limit: PASS, FAIL,
// n/a; "" for a plain figure.
func (f *figure) verdict() string {
	if f.limit == 0 {
		return ""
	}
	s, ok := summarize(f.values)
	switch {
	case !ok:
		return "n/a"
	case s.median >= f.limit:
		return "PASS"
	}
	return "FAIL"
}

func (f *figure) limitText() string {
	if f.limit == 0 {
		return ""
	}
	return "≥ " + strconv.FormatFloat(f.limit, 'f', -1, 64)
}

// formatValue writes v with about four significant digits.
func formatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "n/a"
	case a >= 1000 || v == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func (f *figure) cells() [3]string {
	s, ok := summarize(f.values)
	if !ok {
		return [3]string{"n/a", "n/a", "n/a"}
	}
	return [3]string{formatValue(s.median), formatValue(s.min), formatValue(s.max)}
}

// writeText writes the report as the plain-text table shown on stdout.
func (r *report) writeText(w io.Writer) {
	fmt.Fprintln(w, r.title)
	for _, h := range r.header {
		fmt.Fprintf(w, "%-10s %s\n", h.key, h.value)
	}
	width := 0
	for _, f := range r.figures {
		width = max(width, len(f.name)+2)
	}
	fmt.Fprintf(w, "\n%-*s %10s %10s %10s  %-12s %s\n", width, "", "median", "min", "max", "unit", "target")
	section := ""
	for _, f := range r.figures {
		if f.section != section {
			section = f.section
			fmt.Fprintln(w, section)
		}
		c := f.cells()
		fmt.Fprintf(w, "  %-*s %10s %10s %10s  %-12s %s\n", width-2, f.name, c[0], c[1], c[2], f.unit,
			strings.TrimSpace(f.limitText()+" "+f.verdict()))
	}
	for _, n := range r.notes {
		fmt.Fprintln(w, "\nnote: "+n)
	}
}

// writeMarkdown writes the report as Markdown, for BENCHMARKS.md.
func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", r.title)
	for _, h := range r.header {
		fmt.Fprintf(w, "- %s: %s\n", h.key, h.value)
	}
	fmt.Fprint(w, "\n| measure | median | min | max | unit | target |\n|---|--:|--:|--:|---|---|\n")
	section := ""
	for _, f := range r.figures {
		if f.section != section {
			section = f.section
			fmt.Fprintf(w, "| **%s** | | | | | |\n", section)
		}
		c := f.cells()
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", strings.ReplaceAll(f.name, "|", `\|`), c[0], c[1], c[2], f.unit,
			strings.TrimSpace(f.limitText()+" "+f.verdict()))
	}
	for _, n := range r.notes {
		fmt.Fprintf(w, "\n- note: %s\n", n)
	}
}

// writeCSV writes every figure with its value in each repetition.
func (r *report) writeCSV(w io.Writer, reps int) error {
	cw := csv.NewWriter(w)
	head := []string{"section", "name", "unit", "median", "min", "max", "limit", "verdict"}
	for i := range reps {
		head = append(head, "rep"+strconv.Itoa(i+1))
	}
	cw.Write(head)
	num := func(v float64) string {
		if math.IsNaN(v) {
			return ""
		}
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
	for _, f := range r.figures {
		s, ok := summarize(f.values)
		row := []string{f.section, f.name, f.unit, "", "", "", f.limitText(), f.verdict()}
		if ok {
			row[3], row[4], row[5] = num(s.median), num(s.min), num(s.max)
		}
		for i := range reps {
			v := math.NaN()
			if i < len(f.values) {
				v = f.values[i]
			}
			row = append(row, num(v))
		}
		cw.Write(row)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// writeFiles writes the report as CSV and Markdown into o.out, named by the
// run's start time (fwbench-YYYYMMDD-HHMMSS), so that earlier runs stay.
func (r *report) writeFiles(o options, begin time.Time, stdout io.Writer) error {
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return fmt.Errorf("results directory: %w", err)
	}
	base := filepath.Join(o.out, "fwbench-"+begin.UTC().Format("20060102-150405"))
	var csvBuf, mdBuf bytes.Buffer
	if err := r.writeCSV(&csvBuf, o.reps); err != nil {
		return err
	}
	r.writeMarkdown(&mdBuf)
	for name, data := range map[string][]byte{base + ".csv": csvBuf.Bytes(), base + ".md": mdBuf.Bytes()} {
		if err := os.WriteFile(name, data, 0o644); err != nil {
			return fmt.Errorf("write results: %w", err)
		}
	}
	fmt.Fprintf(stdout, "\nwritten: %s.csv, %s.md\n", base, base)
	return nil
}
