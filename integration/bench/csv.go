package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
)

// writeCSV writes every figure and target with its value in each
// repetition, for comparing runs.
func (r *report) writeCSV(w io.Writer, reps int) error {
	cw := csv.NewWriter(w)
	head := []string{"kind", "section", "name", "unit", "median", "min", "max", "limit", "verdict"}
	for i := range reps {
		head = append(head, "rep"+strconv.Itoa(i+1))
	}
	cw.Write(append(head, "note"))
	row := func(kind, section, name, unit string, values []float64, limit, verdict, note string) {
		s, ok := summarize(values)
		cells := []string{kind, section, name, unit, "", "", "", limit, verdict}
		if ok {
			cells[4], cells[5], cells[6] = csvValue(s.median), csvValue(s.min), csvValue(s.max)
		}
		for i := range reps {
			v := math.NaN()
			if i < len(values) {
				v = values[i]
			}
			cells = append(cells, csvValue(v))
		}
		cw.Write(append(cells, note))
	}
	for _, f := range r.figures {
		row("figure", f.section, f.name, f.unit, f.values, "", "", f.na)
	}
	for _, t := range r.targets {
		row("target", "", t.name, t.unit, t.values, t.limitText(), t.verdict(), "")
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func csvValue(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}
