package fastcgi

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
)

// record is one decoded record, as the server side sees it.
type record struct {
	version, typ byte
	id           uint16
	content      []byte
	pad          int
}

// readRecord reads one record from r, the way a server would.
func readRecord(r io.Reader) (record, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return record{}, err
	}
	rec := record{
		version: h[0],
		typ:     h[1],
		id:      binary.BigEndian.Uint16(h[2:]),
		content: make([]byte, binary.BigEndian.Uint16(h[4:])),
		pad:     int(h[6]),
	}
	if _, err := io.ReadFull(r, rec.content); err != nil {
		return record{}, err
	}
	_, err := io.CopyN(io.Discard, r, int64(rec.pad))
	return rec, err
}

// encodeRecord builds a record the way a server would, with pad bytes of
// padding so that tests also exercise skipping it.
func encodeRecord(typ byte, id uint16, content string, pad int) []byte {
	b := []byte{version1, typ, 0, 0, 0, 0, byte(pad), 0}
	binary.BigEndian.PutUint16(b[2:], id)
	binary.BigEndian.PutUint16(b[4:], uint16(len(content)))
	b = append(b, content...)
	return append(b, make([]byte, pad)...)
}

// endRequestRecord builds an END_REQUEST record for our request id.
func endRequestRecord(appStatus uint32, protocolStatus byte) []byte {
	var body [8]byte
	binary.BigEndian.PutUint32(body[:], appStatus)
	body[4] = protocolStatus
	return encodeRecord(typeEndRequest, requestID, string(body[:]), 0)
}

// decodePairs decodes a complete name-value pair stream.
func decodePairs(b []byte) ([]Param, error) {
	readLen := func() (int, error) {
		if len(b) == 0 {
			return 0, io.ErrUnexpectedEOF
		}
		if b[0] < 128 {
			n := int(b[0])
			b = b[1:]
			return n, nil
		}
		if len(b) < 4 {
			return 0, io.ErrUnexpectedEOF
		}
		n := int(binary.BigEndian.Uint32(b) &^ (1 << 31))
		b = b[4:]
		return n, nil
	}
	var params []Param
	for len(b) > 0 {
		nameLen, err := readLen()
		if err != nil {
			return nil, err
		}
		valueLen, err := readLen()
		if err != nil {
			return nil, err
		}
		if nameLen > len(b) || valueLen > len(b)-nameLen {
			return nil, io.ErrUnexpectedEOF
		}
		params = append(params, Param{string(b[:nameLen]), string(b[nameLen : nameLen+valueLen])})
		b = b[nameLen+valueLen:]
	}
	return params, nil
}

// readStream reads records of type typ until the empty one that ends the
// stream and returns their concatenated content and the number of records.
func readStream(r io.Reader, typ byte) (content []byte, records int, err error) {
	for {
		rec, err := readRecord(r)
		if err != nil {
			return nil, records, err
		}
		records++
		switch {
		case rec.version != version1 || rec.typ != typ || rec.id != requestID:
			return nil, records, fmt.Errorf("got record version %d type %d id %d, want version 1 type %d id 1",
				rec.version, rec.typ, rec.id, typ)
		case (len(rec.content)+rec.pad)%8 != 0:
			return nil, records, fmt.Errorf("record of %d bytes padded by %d, not to a multiple of 8", len(rec.content), rec.pad)
		case len(rec.content) == 0:
			return content, records, nil
		}
		content = append(content, rec.content...)
	}
}

// decodeRequest reads a whole request as a responder would, checking the
// BEGIN_REQUEST record and the stream structure.
func decodeRequest(r io.Reader) (params []Param, body []byte, err error) {
	begin, err := readRecord(r)
	if err != nil {
		return nil, nil, err
	}
	want := record{version: version1, typ: typeBeginRequest, id: requestID, content: []byte{0, roleResponder, 0, 0, 0, 0, 0, 0}}
	if begin.version != want.version || begin.typ != want.typ || begin.id != want.id || !bytes.Equal(begin.content, want.content) {
		return nil, nil, fmt.Errorf("got BEGIN_REQUEST %+v, want %+v", begin, want)
	}
	pairs, _, err := readStream(r, typeParams)
	if err != nil {
		return nil, nil, fmt.Errorf("params: %w", err)
	}
	if params, err = decodePairs(pairs); err != nil {
		return nil, nil, fmt.Errorf("params: %w", err)
	}
	body, _, err = readStream(r, typeStdin)
	if err != nil {
		return nil, nil, fmt.Errorf("stdin: %w", err)
	}
	return params, body, nil
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
		{65536, 128, []byte{0x80, 1, 0, 0, 0x80, 0, 0, 128}},
		{127, 65536, []byte{127, 0x80, 1, 0, 0}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d_%d", tt.nameLen, tt.valueLen), func(t *testing.T) {
			sent := []Param{
				{strings.Repeat("N", tt.nameLen), strings.Repeat("v", tt.valueLen)},
				{"NEXT", "pair"}, // must still decode after a long pair
			}
			b := appendRequest(nil, &Request{Params: sent})
			r := bytes.NewReader(b)
			if _, err := readRecord(r); err != nil {
				t.Fatal(err)
			}
			pairs, _, err := readStream(r, typeParams)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(pairs, tt.prefix) {
				t.Errorf("pair stream starts % x, want % x", pairs[:len(tt.prefix)], tt.prefix)
			}
			got, err := decodePairs(pairs)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, sent) {
				t.Errorf("decoded params differ from those sent")
			}
		})
	}
}

func TestStreamSplitting(t *testing.T) {
	tests := []struct {
		size, records int // records includes the empty one ending the stream
	}{
		{0, 1},
		{1, 2},
		{65535, 2},
		{65536, 3},
		{200000, 5},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.size), func(t *testing.T) {
			content := make([]byte, tt.size)
			for i := range content {
				content[i] = byte(i * 7)
			}
			s := stream{typ: typeStdin, hdr: -1}
			s.write(content)
			s.end()
			r := bytes.NewReader(s.buf)
			got, records, err := readStream(r, typeStdin)
			if err != nil {
				t.Fatal(err)
			}
			if records != tt.records {
				t.Errorf("got %d records, want %d", records, tt.records)
			}
			if !bytes.Equal(got, content) {
				t.Errorf("reassembled %d bytes differ from the %d written", len(got), len(content))
			}
			if r.Len() != 0 {
				t.Errorf("%d bytes left after the end of the stream", r.Len())
			}
		})
	}
}

func TestEncodeRequest(t *testing.T) {
	sent := &Request{Params: typicalParams(), Body: []byte(`{"job":42,"ok":true}`)}
	params, body, err := decodeRequest(bytes.NewReader(appendRequest(nil, sent)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(params, sent.Params) {
		t.Errorf("got params %q, want %q", params, sent.Params)
	}
	if !bytes.Equal(body, sent.Body) {
		t.Errorf("got body %q, want %q", body, sent.Body)
	}
}

func TestReadResponse(t *testing.T) {
	stdout := "Content-Type: text/plain\r\n\r\nhello"
	tests := []struct {
		name    string
		stream  []byte
		wantErr error
	}{
		{"complete", slices.Concat(encodeRecord(typeStdout, 1, stdout, 3), endRequestRecord(0, 0)), nil},
		{"empty", nil, ErrProtocol},
		{"truncated header", encodeRecord(typeStdout, 1, stdout, 0)[:5], ErrProtocol},
		{"truncated content", encodeRecord(typeStdout, 1, stdout, 0)[:12], ErrProtocol},
		{"truncated padding", encodeRecord(typeStdout, 1, stdout, 5)[:8+len(stdout)+2], ErrProtocol},
		{"truncated end", endRequestRecord(0, 0)[:12], ErrProtocol},
		{"short end", encodeRecord(typeEndRequest, 1, "\x00\x00\x00\x00\x00", 0), ErrProtocol},
		{"unexpected type", encodeRecord(typeStdin, 1, "", 0), ErrProtocol},
		{"management record", encodeRecord(11, 0, "\x01\x00\x00\x00\x00\x00\x00\x00", 0), ErrProtocol},
		{"overloaded", endRequestRecord(0, statusOverloaded), ErrUnavailable},
		{"unknown status", endRequestRecord(0, 4), ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := readResponse(bufio.NewReader(bytes.NewReader(tt.stream)))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err == nil && string(resp.Body) != "hello" {
				t.Errorf("got body %q, want %q", resp.Body, "hello")
			}
		})
	}
}

func FuzzReadParams(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 1, 'A', 'b'})
	f.Add([]byte{0x80, 0, 0, 128, 0})
	f.Add(appendRequest(nil, &Request{Params: typicalParams()})[16:])
	f.Fuzz(func(t *testing.T, data []byte) {
		params, err := decodePairs(data)
		if err != nil {
			return
		}
		// Whatever decodes must survive our encoder unchanged.
		pairs, _, err := readStream(bytes.NewReader(appendRequest(nil, &Request{Params: params})[16:]), typeParams)
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodePairs(pairs)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(again, params) {
			t.Fatalf("round trip changed %q into %q", params, again)
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
		buf = appendRequest(buf[:0], req)
	}
	b.SetBytes(int64(len(buf)))
}
