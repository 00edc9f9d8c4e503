package fastcgi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
)

// errMalformed is what php-fpm makes of a request it cannot parse: it
// closes the connection without an answer.
var errMalformed = errors.New("malformed request")

// parsePairs parses one PARAMS record's content on its own, as php-fpm does
// (php-src main/fastcgi.c, fcgi_get_params): a pair that does not end inside
// the record makes the request malformed.
func parsePairs(b []byte) ([]Param, error) {
	readLen := func() (int, bool) {
		if len(b) == 0 {
			return 0, false
		}
		if b[0] < 128 {
			n := int(b[0])
			b = b[1:]
			return n, true
		}
		// php-fpm wants more than the three bytes left of a long length.
		if len(b) <= 4 {
			return 0, false
		}
		n := int(binary.BigEndian.Uint32(b) &^ (1 << 31))
		b = b[4:]
		return n, true
	}
	var params []Param
	for len(b) > 0 {
		nameLen, ok := readLen()
		if !ok {
			return nil, errMalformed
		}
		valueLen, ok := readLen()
		if !ok || nameLen+valueLen > len(b) {
			return nil, errMalformed
		}
		params = append(params, Param{string(b[:nameLen]), string(b[nameLen : nameLen+valueLen])})
		b = b[nameLen+valueLen:]
	}
	return params, nil
}

// fakeRequest is what a fake server read from one connection.
type fakeRequest struct {
	params  []Param
	body    []byte
	keep    bool // FCGI_KEEP_CONN was set
	records int  // PARAMS records, the empty one excluded
}

// decodeRequest reads a whole request as php-fpm would: BEGIN_REQUEST, then
// PARAMS record by record (each parsed on its own, content and padding
// within maxRecord, see fcgi_read_request), then STDIN. An error that is
// errMalformed is a request php-fpm would drop.
func decodeRequest(r io.Reader) (fakeRequest, error) {
	var req fakeRequest
	begin, err := readRecord(r)
	if err != nil {
		return req, err
	}
	if err := checkRecord(begin, typeBeginRequest); err != nil || len(begin.content) != 8 ||
		binary.BigEndian.Uint16(begin.content) != roleResponder || begin.content[2]&^flagKeepConn != 0 {
		return req, fmt.Errorf("%w: BEGIN_REQUEST %+v", errMalformed, begin)
	}
	req.keep = begin.content[2] == flagKeepConn
	for {
		rec, err := readRecord(r)
		if err != nil {
			return req, err
		}
		if err := checkRecord(rec, typeParams); err != nil {
			return req, fmt.Errorf("%w: %w", errMalformed, err)
		}
		if len(rec.content) == 0 {
			break
		}
		req.records++
		pairs, err := parsePairs(rec.content)
		if err != nil {
			return req, fmt.Errorf("PARAMS record %d: %w", req.records, err)
		}
		req.params = append(req.params, pairs...)
	}
	if req.body, _, err = readStream(r, typeStdin); err != nil {
		return req, fmt.Errorf("stdin: %w", err)
	}
	return req, nil
}

// encodedParams returns the PARAMS stream content of req's encoding.
func encodedParams(t testing.TB, params []Param) []byte {
	b, err := appendRequest(nil, &Request{Params: params}, 0)
	if err != nil {
		t.Fatal(err)
	}
	content, _, err := readStream(bytes.NewReader(b[16:]), typeParams)
	if err != nil {
		t.Fatal(err)
	}
	return content
}

func TestPairSize(t *testing.T) {
	if MaxPairSize != maxRecord {
		t.Fatalf("MaxPairSize %d differs from the record limit %d", MaxPairSize, maxRecord)
	}
	tests := []struct {
		nameLen, valueLen, size int
	}{
		{0, 0, 2},
		{1, 0, 3},
		{127, 127, 256},
		{128, 0, 133},
		{1, 128, 134},
		{128, 128, 264},
	}
	for _, tt := range tests {
		name, value := strings.Repeat("N", tt.nameLen), strings.Repeat("v", tt.valueLen)
		if got := PairSize(name, value); got != tt.size {
			t.Errorf("PairSize(%d, %d bytes) = %d, want %d", tt.nameLen, tt.valueLen, got, tt.size)
		}
		if got := len(encodedParams(t, []Param{{name, value}})); got != tt.size {
			t.Errorf("%d, %d bytes encode to %d bytes, PairSize says %d", tt.nameLen, tt.valueLen, got, tt.size)
		}
	}
}

func TestPairLengthEncoding(t *testing.T) {
	tests := []struct {
		nameLen, valueLen int
		prefix            []byte
	}{
		{1, 0, []byte{1, 0}},
		{127, 127, []byte{127, 127}},
		{128, 1, []byte{0x80, 0, 0, 128, 1}},
		{1, 128, []byte{1, 0x80, 0, 0, 128}},
		{300, 60000, []byte{0x80, 0, 1, 44, 0x80, 0, 0xea, 0x60}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%d", tt.nameLen, tt.valueLen), func(t *testing.T) {
			sent := []Param{
				{strings.Repeat("N", tt.nameLen), strings.Repeat("v", tt.valueLen)},
				{"NEXT", "pair"}, // must still decode after a long pair
			}
			b, err := appendRequest(nil, &Request{Params: sent}, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeRequest(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if pairs := encodedParams(t, sent); !bytes.HasPrefix(pairs, tt.prefix) {
				t.Errorf("pair stream starts % x, want % x", pairs[:len(tt.prefix)], tt.prefix)
			}
			if !slices.Equal(got.params, sent) {
				t.Errorf("decoded params differ from those sent")
			}
		})
	}
}

func TestEncodeRequest(t *testing.T) {
	for _, flags := range []byte{0, flagKeepConn} {
		sent := &Request{Params: typicalParams(), Body: []byte(`{"job":42,"ok":true}`)}
		b, err := appendRequest(nil, sent, flags)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRequest(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.params, sent.Params) || !bytes.Equal(got.body, sent.Body) || got.keep != (flags == flagKeepConn) {
			t.Errorf("flags %d: got %+v, want what was sent", flags, got)
		}
		if got.records != 1 {
			t.Errorf("typical params took %d PARAMS records, want 1", got.records)
		}
	}
}

// fixedSizePair returns a pair whose encoding takes exactly size bytes.
func fixedSizePair(name string, size int) Param {
	value := strings.Repeat("v", size-len(name)-5) // 1-byte name length, 4-byte value length
	if PairSize(name, value) != size {
		panic("fixedSizePair: bad arithmetic")
	}
	return Param{name, value}
}

// TestParamsAsPhpFpmReadsThem sends parameters through Do to a fake server
// that parses PARAMS records one by one as php-fpm does, and drops the
// connection without an answer where php-fpm would.
func TestParamsAsPhpFpmReadsThem(t *testing.T) {
	many := make([]Param, 200)
	for i := range many {
		many[i] = Param{fmt.Sprintf("HTTP_X_P%03d", i), strings.Repeat("v", 400)} // 83,200 bytes encoded
	}
	tests := []struct {
		name    string
		params  []Param
		records int   // PARAMS records expected, when sent
		wantErr error // ErrParamTooLarge: nothing may reach the server
	}{
		{"one 70 KB param", []Param{{"REQUEST_METHOD", "POST"}, {"HTTP_X_BLOB", strings.Repeat("x", 70_000)}}, 0, ErrParamTooLarge},
		{"one byte over the maximum", []Param{fixedSizePair("HTTP_X_BIG", MaxPairSize+1)}, 0, ErrParamTooLarge},
		{"200 params of 400 bytes", many, 2, nil},
		{"pairs of exactly the maximum size", []Param{
			{"A", "1"},
			fixedSizePair("HTTP_X_MAX1", MaxPairSize),
			fixedSizePair("HTTP_X_MAX2", MaxPairSize),
			{"Z", "26"},
		}, 4, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serveFake(t, func(conn net.Conn, r *bufio.Reader) {
				req, err := decodeRequest(r)
				if err != nil {
					t.Errorf("php-fpm would drop this request: %v", err)
					return // Close without an answer, as php-fpm does.
				}
				if !slices.Equal(req.params, tt.params) {
					t.Errorf("server got %d params, want the %d sent, unchanged", len(req.params), len(tt.params))
				}
				if req.records != tt.records {
					t.Errorf("params took %d PARAMS records, want %d", req.records, tt.records)
				}
				conn.Write(slices.Concat(encodeRecord(typeStdout, requestID, "\r\nok", 0), endRequestRecord(0, 0)))
			})
			c := newClient(t, srv.addr, Options{})
			resp, err := c.Do(t.Context(), &Request{Params: tt.params})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), tt.params[len(tt.params)-1].Name) {
					t.Errorf("got error %v, want %v naming the parameter", err, tt.wantErr)
				}
				if n := srv.accepted.Load(); n != 0 {
					t.Errorf("the client connected %d times; it should send nothing", n)
				}
				return
			}
			if err != nil || string(resp.Body) != "ok" {
				t.Fatalf("got %+v, %v; want body ok", resp, err)
			}
		})
	}
}

func FuzzReadParams(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1, 'A', 'b'})
	f.Add([]byte{0x80, 0, 0, 128, 0})
	f.Add(encodedParams(f, typicalParams()))
	f.Fuzz(func(t *testing.T, data []byte) {
		params, err := parsePairs(data)
		if err != nil {
			return
		}
		// Whatever php-fpm parses must survive our encoder unchanged, or
		// be refused before anything is sent.
		b, err := appendRequest(nil, &Request{Params: params}, 0)
		tooLarge := slices.ContainsFunc(params, func(p Param) bool { return PairSize(p.Name, p.Value) > MaxPairSize })
		if tooLarge {
			if !errors.Is(err, ErrParamTooLarge) || len(b) != 0 {
				t.Fatalf("a pair over MaxPairSize gave %d bytes and error %v", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeRequest(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.params, params) {
			t.Fatalf("round trip changed %q into %q", params, got.params)
		}
	})
}

// typicalParams is what the daemon sends for one job.
func typicalParams() []Param {
	return []Param{
		{"GATEWAY_INTERFACE", "CGI/1.1"},
		{"SERVER_SOFTWARE", "fpmq"},
		{"SERVER_PROTOCOL", "HTTP/1.1"},
		{"REQUEST_METHOD", "POST"},
		{"REQUEST_URI", "/jobs/handle.php"},
		{"SCRIPT_NAME", "/jobs/handle.php"},
		{"SCRIPT_FILENAME", "/srv/app/public/jobs/handle.php"},
		{"QUERY_STRING", ""},
		{"CONTENT_TYPE", "application/json"},
		{"CONTENT_LENGTH", "20"},
		{"REMOTE_ADDR", "127.0.0.1"},
		{"HTTP_X_JOB_ID", "6f1c2a9e-3b7d-4c55-9a0e-1d2f3b4c5d6e"},
	}
}

func BenchmarkEncodeRequest(b *testing.B) {
	req := &Request{Params: typicalParams(), Body: []byte(`{"job":42,"ok":true}`)}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = appendRequest(buf[:0], req, 0)
	}
	b.SetBytes(int64(len(buf)))
}
