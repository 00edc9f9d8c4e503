package fastcgi

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
)

// Protocol constants from the FastCGI 1.0 specification.
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

	headerLen  = 8
	maxContent = 65535

	// requestID is the id of our only request on each connection. Zero is
	// reserved for management records, so one is the natural choice.
	requestID = 1
)

// appendRequest appends the complete request to dst: BEGIN_REQUEST, the
// PARAMS stream and the STDIN stream, each stream closed by an empty record.
// It adds nothing the caller did not ask for, so CONTENT_LENGTH must be among
// req.Params whenever req.Body is not empty.
func appendRequest(dst []byte, req *Request) []byte {
	return appendRequestFlags(dst, req, 0)
}

// appendRequestFlags is appendRequest with the BEGIN_REQUEST flags: 0, or
// flagKeepConn to ask the server to keep the connection open after
// END_REQUEST.
func appendRequestFlags(dst []byte, req *Request, flags byte) []byte {
	dst = append(dst,
		version1, typeBeginRequest, 0, requestID, 0, 8, 0, 0,
		0, roleResponder, flags, 0, 0, 0, 0, 0)

	s := stream{buf: dst, typ: typeParams, hdr: -1}
	for _, p := range req.Params {
		s.writeLen(len(p.Name))
		s.writeLen(len(p.Value))
		s.writeString(p.Name)
		s.writeString(p.Value)
	}
	s.end()

	s.typ = typeStdin
	s.write(req.Body)
	s.end()
	return s.buf
}

// stream appends one FastCGI stream (PARAMS or STDIN) to buf. Callers write
// content of any length and stream starts a new record whenever the current
// one is full, which is what lets a name-value pair straddle records and a
// body larger than 64 KiB arrive whole.
type stream struct {
	buf []byte
	typ byte
	hdr int // offset in buf of the header of the record being filled, or -1
}

// room returns how many more content bytes fit, starting a record if needed.
func (s *stream) room() int {
	if s.hdr < 0 || len(s.buf)-s.hdr-headerLen == maxContent {
		s.closeRecord()
		s.hdr = len(s.buf)
		s.buf = append(s.buf, make([]byte, headerLen)...)
	}
	return maxContent - (len(s.buf) - s.hdr - headerLen)
}

func (s *stream) write(p []byte) {
	for len(p) > 0 {
		n := min(s.room(), len(p))
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
	}
}

// writeString is write for strings, so parameters are copied only once.
func (s *stream) writeString(p string) {
	for len(p) > 0 {
		n := min(s.room(), len(p))
		s.buf = append(s.buf, p[:n]...)
		p = p[n:]
	}
}

// writeLen writes a name-value pair length: one byte below 128, otherwise
// four bytes, big endian, with the high bit set.
func (s *stream) writeLen(n int) {
	if n < 128 {
		s.write([]byte{byte(n)})
		return
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(n)|1<<31)
	s.write(b[:])
}

// closeRecord fills in the header of the open record and pads its content to
// a multiple of eight bytes, as the specification recommends.
func (s *stream) closeRecord() {
	if s.hdr < 0 {
		return
	}
	n := len(s.buf) - s.hdr - headerLen
	pad := -n & 7
	putHeader(s.buf[s.hdr:], s.typ, n, pad)
	s.buf = append(s.buf, make([]byte, pad)...)
	s.hdr = -1
}

// end closes the stream with the empty record the specification requires.
func (s *stream) end() {
	s.closeRecord()
	s.buf = append(s.buf, version1, s.typ, 0, requestID, 0, 0, 0, 0)
}

func putHeader(b []byte, typ byte, contentLen, padLen int) {
	_ = b[headerLen-1]
	b[0] = version1
	b[1] = typ
	b[2] = 0
	b[3] = requestID
	binary.BigEndian.PutUint16(b[4:], uint16(contentLen))
	b[6] = byte(padLen)
	b[7] = 0
}

// readResponse reads records until END_REQUEST and returns the parsed
// response. Any failure to read a whole record, including the connection
// closing early, is a protocol error: the server did not finish its answer.
func readResponse(r *bufio.Reader) (*Response, error) {
	var stdout, stderr []byte
	for {
		// Peek lets us decode the header in place, without allocating.
		h, err := r.Peek(headerLen)
		if err != nil {
			return nil, fmt.Errorf("%w: connection closed before END_REQUEST: %w", ErrProtocol, err)
		}
		typ := h[1]
		id := binary.BigEndian.Uint16(h[2:])
		n := int(binary.BigEndian.Uint16(h[4:]))
		pad := int(h[6])
		switch {
		case h[0] != version1:
			return nil, fmt.Errorf("%w: record version %d, want 1", ErrProtocol, h[0])
		case id != requestID:
			return nil, fmt.Errorf("%w: record for request id %d, want %d", ErrProtocol, id, requestID)
		}
		r.Discard(headerLen) // Cannot fail: the bytes were peeked.

		switch typ {
		case typeStdout:
			stdout, err = readContent(r, stdout, n)
		case typeStderr:
			stderr, err = readContent(r, stderr, n)
		case typeEndRequest:
			if n != 8 {
				return nil, fmt.Errorf("%w: END_REQUEST content length %d, want 8", ErrProtocol, n)
			}
			b, err := r.Peek(8)
			if err != nil {
				return nil, fmt.Errorf("%w: truncated END_REQUEST: %w", ErrProtocol, err)
			}
			appStatus, protocolStatus := binary.BigEndian.Uint32(b), b[4]
			// Consume the record whole, so that a kept-alive connection
			// starts clean for the next request.
			if _, err := r.Discard(8 + pad); err != nil {
				return nil, fmt.Errorf("%w: truncated END_REQUEST: %w", ErrProtocol, err)
			}
			return endRequest(appStatus, protocolStatus, stdout, stderr)
		default:
			return nil, fmt.Errorf("%w: unexpected record type %d", ErrProtocol, typ)
		}
		if err == nil {
			_, err = r.Discard(pad)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: truncated record: %w", ErrProtocol, err)
		}
	}
}

// readContent appends the next n bytes of r to dst.
func readContent(r *bufio.Reader, dst []byte, n int) ([]byte, error) {
	dst = slices.Grow(dst, n)
	_, err := io.ReadFull(r, dst[len(dst):len(dst)+n])
	return dst[:len(dst)+n], err
}

// endRequest turns the END_REQUEST fields and the collected streams into the
// result of the request.
func endRequest(appStatus uint32, protocolStatus byte, stdout, stderr []byte) (*Response, error) {
	switch protocolStatus {
	case statusRequestComplete:
	case statusOverloaded:
		return nil, fmt.Errorf("%w: server overloaded", ErrUnavailable)
	case statusCantMultiplex:
		return nil, fmt.Errorf("%w: server cannot multiplex connections", ErrProtocol)
	case statusUnknownRole:
		return nil, fmt.Errorf("%w: server does not support the responder role", ErrProtocol)
	default:
		return nil, fmt.Errorf("%w: unknown protocol status %d", ErrProtocol, protocolStatus)
	}
	resp := &Response{Stderr: stderr, AppStatus: appStatus}
	var err error
	resp.Status, resp.Header, resp.Body, err = parseHeader(stdout)
	if err != nil {
		return nil, err
	}
	return resp, nil
}
