package fastcgi

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
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

// checkRecord checks what every record we write must satisfy: version 1,
// our request id, and content plus padding within maxRecord, since php-fpm
// drops a PARAMS record beyond that (php-src main/fastcgi.c,
// fcgi_read_request).
func checkRecord(rec record, typ byte) error {
	switch {
	case rec.version != version1 || rec.typ != typ || rec.id != requestID:
		return fmt.Errorf("got record version %d type %d id %d, want version 1 type %d id 1", rec.version, rec.typ, rec.id, typ)
	case len(rec.content)+rec.pad > maxRecord:
		return fmt.Errorf("record of %d bytes padded by %d: over %d", len(rec.content), rec.pad, maxRecord)
	}
	return nil
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
		if err := checkRecord(rec, typ); err != nil {
			return nil, records, err
		}
		if len(rec.content) == 0 {
			return content, records, nil
		}
		content = append(content, rec.content...)
	}
}

func TestAppendStream(t *testing.T) {
	tests := []struct {
		size, records int // records includes the empty one ending the stream
	}{
		{0, 1},
		{1, 2},
		{65528, 2},
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
			r := bytes.NewReader(appendStream(nil, typeStdin, content))
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

// Padding aligns records to eight bytes, as the specification recommends,
// but never takes a record past maxRecord, which php-fpm would refuse.
func TestEndRecordPadding(t *testing.T) {
	tests := []struct{ content, pad int }{
		{1, 7},
		{8, 0},
		{13, 3},
		{65528, 0},
		{65529, 0},
		{65535, 0},
	}
	for _, tt := range tests {
		dst, at := beginRecord([]byte("before"))
		dst = append(dst, make([]byte, tt.content)...)
		dst = endRecord(dst, at, typeParams)
		rec, err := readRecord(bytes.NewReader(dst[at:]))
		if err != nil {
			t.Fatal(err)
		}
		if err := checkRecord(rec, typeParams); err != nil || len(rec.content) != tt.content || rec.pad != tt.pad {
			t.Errorf("%d bytes: got %d bytes padded by %d (%v), want padding %d", tt.content, len(rec.content), rec.pad, err, tt.pad)
		}
		if len(dst) != at+headerLen+tt.content+tt.pad {
			t.Errorf("%d bytes: record takes %d bytes, want %d", tt.content, len(dst)-at, headerLen+tt.content+tt.pad)
		}
	}
}
