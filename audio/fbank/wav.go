package fbank

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// maxWAVData caps the PCM data ReadWAV accepts (1 GiB, about 4.6 hours of
// 32 kHz stereo) so a corrupt size field cannot exhaust memory.
const maxWAVData = 1 << 30

// ReadWAV reads a RIFF/WAVE file holding 16-bit integer PCM (format tag 1,
// or WAVE_FORMAT_EXTENSIBLE with the PCM sub-format) and returns its samples
// scaled to [-1, 1) as int16/32768, downmixed to mono by averaging the
// channels, together with the sampling rate in Hz. Chunks other than "fmt "
// and "data" are skipped.
func ReadWAV(r io.Reader) (samples []float32, rate int, err error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, fmt.Errorf("wav: reading RIFF header: %w", noEOF(err))
	}
	if string(hdr[0:4]) != "RIFF" || string(hdr[8:12]) != "WAVE" {
		return nil, 0, fmt.Errorf("wav: not a RIFF/WAVE file (starts %q)", hdr[:])
	}
	var (
		haveFmt  bool
		channels int
		bits     int
	)
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			if errors.Is(err, io.EOF) {
				if !haveFmt {
					return nil, 0, errors.New("wav: no \"fmt \" chunk")
				}
				return nil, 0, errors.New("wav: no \"data\" chunk")
			}
			return nil, 0, fmt.Errorf("wav: reading chunk header: %w", noEOF(err))
		}
		id := string(ch[0:4])
		size := int64(binary.LittleEndian.Uint32(ch[4:8]))
		switch id {
		case "fmt ":
			if haveFmt {
				return nil, 0, errors.New("wav: two \"fmt \" chunks")
			}
			if size < 16 || size > 1024 {
				return nil, 0, fmt.Errorf("wav: \"fmt \" chunk of %d bytes, want 16 to 1024", size)
			}
			body := make([]byte, size+size%2)
			if _, err := io.ReadFull(r, body); err != nil {
				return nil, 0, fmt.Errorf("wav: reading \"fmt \" chunk: %w", noEOF(err))
			}
			format := binary.LittleEndian.Uint16(body[0:2])
			channels = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			align := int(binary.LittleEndian.Uint16(body[12:14]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
			if format == 0xFFFE {
				// WAVE_FORMAT_EXTENSIBLE: cbSize, valid bits, channel mask, sub-format GUID.
				if size < 40 {
					return nil, 0, fmt.Errorf("wav: extensible \"fmt \" chunk of %d bytes, want at least 40", size)
				}
				format = binary.LittleEndian.Uint16(body[24:26])
			}
			if format != 1 {
				return nil, 0, fmt.Errorf("wav: format tag %#x is not integer PCM", format)
			}
			if bits != 16 {
				return nil, 0, fmt.Errorf("wav: %d bits per sample, only 16-bit PCM is supported", bits)
			}
			if channels < 1 {
				return nil, 0, errors.New("wav: zero channels")
			}
			if align != 2*channels {
				return nil, 0, fmt.Errorf("wav: block align %d, want %d for %d channels of 16 bits", align, 2*channels, channels)
			}
			if rate <= 0 {
				return nil, 0, fmt.Errorf("wav: sample rate %d", rate)
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return nil, 0, errors.New("wav: \"data\" chunk before \"fmt \" chunk")
			}
			if size > maxWAVData {
				return nil, 0, fmt.Errorf("wav: data chunk of %d bytes exceeds the %d-byte limit", size, maxWAVData)
			}
			data, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return nil, 0, fmt.Errorf("wav: reading data: %w", err)
			}
			if int64(len(data)) < size {
				return nil, 0, fmt.Errorf("wav: data chunk truncated: %d of %d bytes", len(data), size)
			}
			frame := 2 * channels
			if len(data)%frame != 0 {
				return nil, 0, fmt.Errorf("wav: data chunk of %d bytes is not a whole number of %d-byte frames", len(data), frame)
			}
			samples = make([]float32, len(data)/frame)
			scale := 1 / (32768 * float32(channels))
			for i := range samples {
				var sum int64
				for c := 0; c < channels; c++ {
					sum += int64(int16(binary.LittleEndian.Uint16(data[i*frame+2*c:])))
				}
				samples[i] = float32(sum) * scale
			}
			return samples, rate, nil
		default:
			if _, err := io.CopyN(io.Discard, r, size+size%2); err != nil {
				return nil, 0, fmt.Errorf("wav: skipping %q chunk: %w", id, noEOF(err))
			}
		}
	}
}

// noEOF reports a premature end of input as io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
