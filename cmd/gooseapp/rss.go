package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// rss is resident memory in bytes.
type rss struct{ current, peak int64 }

// readRSS reads VmRSS and VmHWM from /proc/self/status (Linux); elsewhere
// it returns zeros.
func readRSS() rss {
	var r rss
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return r
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			r.current = n << 10
		case "VmHWM":
			r.peak = n << 10
		}
	}
	return r
}
