//go:build !linux

package hugemem

func alignOffset([]byte) int { return 0 }

func advise([]byte) {}
