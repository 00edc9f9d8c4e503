package fastcgi

import (
	"bufio"
	"encoding/binary"
	"fmt"
)

// Protocol constants from the FastCGI 1.0 specification, sections 3.3 and 8.
const (
	version1 = 1

	typeBeginRequest = 1
	typeEndRequest   = 3
	typeParams       = 4
	typeStdin        = 5
	typeStdout       = 6
	typeStderr       = 7

	roleResponder = 1
	flagKeepConn  = 1

	statusRequestComplete = 0
	statusCantMultiplex   = 1
	statusOverloaded      = 2
	statusUnknownRole     = 3

	headerLen = 8

	// maxRecord bounds a record's content plus its padding. The
	// specification only bounds the content (16-bit length), but php-fpm
	// drops a PARAMS record whose content and padding together exceed
	// 65535 bytes (php-src main/fastcgi.c, fcgi_read_request), so no
	// record we write exceeds it.
	maxRecord = 65535

	// requestID is the id of our only request on each connection. Zero is
	// reserved for management records, so one is the natural choice.
	requestID = 1
)

// recordHeader is a decoded record header (specification section 3.3).
type recordHeader struct {
	typ        byte
	contentLen int // 0 to 65535 bytes
	padLen     int // 0 to 255 bytes
}

// readRecordHeader reads the next record header from r. A record for another
// request id or of a version other than 1 is ErrProtocol: we only ever have
// one request per connection. Read errors are returned unwrapped.
func readRecordHeader(r *bufio.Reader) (recordHeader, error) {
	// Peek decodes the header in place, without copying it.
	b, err := r.Peek(headerLen)
	if err != nil {
		return recordHeader{}, err
	}
	if b[0] != version1 {
		return recordHeader{}, fmt.Errorf("%w: record version %d, want 1", ErrProtocol, b[0])
	}
	if id := binary.BigEndian.Uint16(b[2:]); id != requestID {
		return recordHeader{}, fmt.Errorf("%w: record for request id %d, want %d", ErrProtocol, id, requestID)
	}
	h := recordHeader{typ: b[1], contentLen: int(binary.BigEndian.Uint16(b[4:])), padLen: int(b[6])}
	r.Discard(headerLen) // Cannot fail: the bytes were peeked.
	return h, nil
}

// appendBeginRequest appends the BEGIN_REQUEST record of a responder
// request. flags is 0 or flagKeepConn (specification section 5.1).
func appendBeginRequest(dst []byte, flags byte) []byte {
	return append(dst,
		version1, typeBeginRequest, 0, requestID, 0, 8, 0, 0,
		0, roleResponder, flags, 0, 0, 0, 0, 0)
}

// beginRecord appends a placeholder header for a record of up to maxRecord
// bytes and returns the offset that endRecord needs.
func beginRecord(dst []byte) ([]byte, int) {
	return append(dst, 0, 0, 0, 0, 0, 0, 0, 0), len(dst)
}

// endRecord fills in the header at dst[at:] for the content appended since
// beginRecord and pads it to a multiple of eight bytes, as the specification
// recommends (section 3.3), unless that would exceed maxRecord.
func endRecord(dst []byte, at int, typ byte) []byte {
	n := len(dst) - at - headerLen
	pad := -n & 7
	if n+pad > maxRecord {
		pad = 0
	}
	b := dst[at : at+headerLen]
	b[0] = version1
	b[1] = typ
	b[2] = 0
	b[3] = requestID
	binary.BigEndian.PutUint16(b[4:], uint16(n))
	b[6] = byte(pad)
	b[7] = 0
	return append(dst, make([]byte, pad)...)
}

// appendEndOfStream appends the empty record that closes a stream of typ
// records (specification section 3.3, "Stream records").
func appendEndOfStream(dst []byte, typ byte) []byte {
	return append(dst, version1, typ, 0, requestID, 0, 0, 0, 0)
}

// appendStream appends content as a whole stream of typ records: as many
// records of at most maxRecord bytes as it takes, then the empty record.
func appendStream(dst []byte, typ byte, content []byte) []byte {
	for len(content) > 0 {
		n := min(len(content), maxRecord)
		var at int
		dst, at = beginRecord(dst)
		dst = append(dst, content[:n]...)
		dst = endRecord(dst, at, typ)
		content = content[n:]
	}
	return appendEndOfStream(dst, typ)
}
