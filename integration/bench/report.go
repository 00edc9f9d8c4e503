package main

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// figure is one measured quantity: one value per repetition, NaN where it
// could not be measured, and then why.
type figure struct {
	section, name, unit string
	values              []float64
	na                  string
}

// target is one of the benchmark's goals: a quantity of each repetition,
// mostly a ratio of two figures measured side by side, against a limit.
type target struct {
	name   string
	unit   string
	values []float64
	limit  float64
	atMost bool // the median must not exceed limit; else it must reach it
}

// verdict says whether the median of t's values meets its limit.
func (t target) verdict() string {
	s, ok := summarize(t.values)
	switch {
	case !ok:
		return "n/a"
	case t.atMost && s.median <= t.limit, !t.atMost && s.median >= t.limit:
		return "PASS"
	}
	return "FAIL"
}

func (t target) limitText() string {
	op := "≥"
	if t.atMost {
		op = "≤"
	}
	return strings.TrimSpace(op + " " + strconv.FormatFloat(t.limit, 'f', -1, 64) + " " + t.unit)
}

// field is one line of the report's header, such as the machine.
type field struct{ key, value string }

// report is what a run found, in the order it was measured.
type report struct {
	title   string
	header  []field
	figures []*figure
	targets []target
	notes   []string // what went wrong, if anything
}

// add appends the value of the current repetition to a figure, creating
// the figure on first use.
func (r *report) add(section, name, unit string, v float64) {
	f := r.figure(section, name, unit)
	f.values = append(f.values, v)
}

// missing records that the current repetition could not measure a figure,
// and why.
func (r *report) missing(section, name, unit, why string) {
	f := r.figure(section, name, unit)
	f.values = append(f.values, math.NaN())
	f.na = why
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

// values returns a figure's values, or nil if it was never measured.
func (r *report) values(section, name string) []float64 {
	for _, f := range r.figures {
		if f.section == section && f.name == name {
			return f.values
		}
	}
	return nil
}

// formatValue writes v with about four significant digits, so that rates,
// microseconds and ratios all read naturally in one column.
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

// summaryCells returns the median, min and max of values as text.
func summaryCells(values []float64) [3]string {
	s, ok := summarize(values)
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
	width := len("target")
	for _, f := range r.figures {
		width = max(width, len(f.name)+2)
	}
	for _, t := range r.targets {
		width = max(width, len(t.name))
	}

	fmt.Fprintf(w, "\n%-*s %10s %10s %10s  %s\n", width, "", "median", "min", "max", "unit")
	section := ""
	for _, f := range r.figures {
		if f.section != section {
			section = f.section
			fmt.Fprintln(w, section)
		}
		c := summaryCells(f.values)
		fmt.Fprintf(w, "  %-*s %10s %10s %10s  %s\n", width-2, f.name, c[0], c[1], c[2], f.unit)
	}

	fmt.Fprintf(w, "\n%-*s %10s %10s %10s  %-14s %s\n", width, "target", "median", "min", "max", "limit", "verdict")
	for _, t := range r.targets {
		c := summaryCells(t.values)
		fmt.Fprintf(w, "%-*s %10s %10s %10s  %-14s %s\n", width, t.name, c[0], c[1], c[2], t.limitText(), t.verdict())
	}

	if na := r.unmeasured(); len(na) > 0 || len(r.notes) > 0 {
		fmt.Fprintln(w)
		for _, line := range na {
			fmt.Fprintln(w, "n/a: "+line)
		}
		for _, n := range r.notes {
			fmt.Fprintln(w, "note: "+n)
		}
	}
}

// unmeasured lists each figure that has a missing value, with the reason.
func (r *report) unmeasured() []string {
	var out []string
	for _, f := range r.figures {
		if f.na != "" {
			out = append(out, fmt.Sprintf("%s, %s: %s", f.section, f.name, f.na))
		}
	}
	return out
}

// writeMarkdown writes the report as Markdown, for BENCHMARKS.md.
func (r *report) writeMarkdown(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", r.title)
	for _, h := range r.header {
		fmt.Fprintf(w, "- %s: %s\n", h.key, h.value)
	}
	fmt.Fprint(w, "\n| measure | median | min | max | unit |\n|---|--:|--:|--:|---|\n")
	section := ""
	for _, f := range r.figures {
		if f.section != section {
			section = f.section
			fmt.Fprintf(w, "| **%s** | | | | |\n", cell(section))
		}
		c := summaryCells(f.values)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", cell(f.name), c[0], c[1], c[2], f.unit)
	}
	fmt.Fprint(w, "\n| target | median | min | max | limit | verdict |\n|---|--:|--:|--:|---|---|\n")
	for _, t := range r.targets {
		c := summaryCells(t.values)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | **%s** |\n", cell(t.name), c[0], c[1], c[2], t.limitText(), t.verdict())
	}
	if na := r.unmeasured(); len(na) > 0 || len(r.notes) > 0 {
		fmt.Fprintln(w)
		for _, line := range na {
			fmt.Fprintf(w, "- n/a: %s\n", line)
		}
		for _, n := range r.notes {
			fmt.Fprintf(w, "- note: %s\n", n)
		}
	}
}

// cell escapes the pipes of a Markdown table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
