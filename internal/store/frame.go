package store

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// Frame: len uint32 LE | crc uint32 LE | payload. The CRC covers the length
// bytes too, and a zero length is invalid, so a zero-filled tail (what a file
// system may show after a power cut) never parses as a record.
const (
	frameHeader = 8
	maxFrame    = 64 << 20
)

const (
	opPut    byte = 1
	opDelete byte = 2
)

var (
	errTorn    = errors.New("torn record (file ends inside it)")
	errCorrupt = errors.New("corrupt record (checksum or length)")
	errPayload = errors.New("malformed record payload")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func frameCRC(hdr, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(hdr[:4], castagnoli), castagnoli, payload)
}

// beginFrame reserves a frame header at the end of b and returns where it
// starts; endFrame fills it in.
func beginFrame(b []byte) ([]byte, int) {
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0), len(b)
}

func endFrame(b []byte, start int) []byte {
	n := len(b) - start - frameHeader
	binary.LittleEndian.PutUint32(b[start:], uint32(n))
	binary.LittleEndian.PutUint32(b[start+4:], frameCRC(b[start:], b[start+frameHeader:]))
	return b
}

func appendOp(b []byte, op Op) []byte {
	if op.Delete {
		b = append(b, opDelete)
		b = binary.AppendUvarint(b, uint64(len(op.Key)))
		return append(b, op.Key...)
	}
	b = append(b, opPut)
	b = binary.AppendUvarint(b, uint64(len(op.Key)))
	b = append(b, op.Key...)
	b = binary.AppendUvarint(b, uint64(len(op.Value)))
	return append(b, op.Value...)
}

// readFrame returns the payload of the frame at the start of b and the
// frame's total size.
func readFrame(b []byte) (payload []byte, size int, err error) {
	if len(b) < frameHeader {
		return nil, 0, errTorn
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxFrame {
		return nil, 0, errCorrupt
	}
	if uint64(len(b)-frameHeader) < uint64(n) {
		return nil, 0, errTorn
	}
	payload = b[frameHeader : frameHeader+int(n)]
	if binary.LittleEndian.Uint32(b[4:]) != frameCRC(b, payload) {
		return nil, 0, errCorrupt
	}
	return payload, frameHeader + int(n), nil
}

type rawOp struct {
	kind  byte
	key   []byte
	value []byte
}

// decodeOps parses a whole payload into ops (appended to dst) before anything
// is applied, so a malformed payload changes nothing. Values alias payload.
func decodeOps(dst []rawOp, p []byte) ([]rawOp, error) {
	for len(p) > 0 {
		var op rawOp
		op.kind = p[0]
		p = p[1:]
		var err error
		if op.key, p, err = readBytes(p); err != nil {
			return dst, err
		}
		switch op.kind {
		case opPut:
			if op.value, p, err = readBytes(p); err != nil {
				return dst, err
			}
		case opDelete:
		default:
			return dst, errPayload
		}
		dst = append(dst, op)
	}
	return dst, nil
}

func readBytes(p []byte) (v, rest []byte, err error) {
	n, k := binary.Uvarint(p)
	if k <= 0 || n > uint64(len(p)-k) {
		return nil, nil, errPayload
	}
	end := k + int(n)
	return p[k:end:end], p[end:], nil
}
