package outcome

import (
	"testing"
	"time"
)

func TestWaitStart(t *testing.T) {
	sec := time.Unix(1700000000, 0)
	ms := sec.Add(734 * time.Millisecond)
	tests := []struct {
		name      string
		timestamp time.Time
		headers   map[string]any
		want      time.Time
	}{
		{"the AMQP timestamp alone", sec, nil, sec},
		{"milliseconds over the timestamp's seconds", sec, map[string]any{HeaderTimestampMs: ms.UnixMilli()}, ms},
		{"milliseconds as a 32-bit integer", time.Time{}, map[string]any{HeaderTimestampMs: int32(1234)}, time.UnixMilli(1234)},
		{"milliseconds with no timestamp", time.Time{}, map[string]any{HeaderTimestampMs: ms.UnixMilli()}, ms},
		{"a later due time", sec, map[string]any{HeaderTimestampMs: ms.UnixMilli(), HeaderDue: ms.Add(time.Minute).UnixMilli()}, ms.Add(time.Minute)},
		{"an earlier due time", sec, map[string]any{HeaderTimestampMs: ms.UnixMilli(), HeaderDue: sec.Add(-time.Minute).UnixMilli()}, ms},
		{"milliseconds as a string are not read", sec, map[string]any{HeaderTimestampMs: "1700000000734"}, sec},
		{"zero or negative milliseconds are not read", sec, map[string]any{HeaderTimestampMs: int64(-5)}, sec},
		{"nothing", time.Time{}, nil, time.Time{}},
	}
	for _, tt := range tests {
		if got := WaitStart(tt.timestamp, tt.headers); !got.Equal(tt.want) {
			t.Errorf("%s: WaitStart = %v, want %v", tt.name, got, tt.want)
		}
	}
}
