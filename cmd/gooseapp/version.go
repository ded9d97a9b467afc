package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set at link time by the release build
// (packaging/build.sh: -ldflags "-X main.version=... -X main.commit=...").
// A plain go build leaves them empty and the build information fills in
// what it can.
var (
	version string
	commit  string
)

// buildVersion returns the version and commit this binary was built from.
func buildVersion() (ver, rev string) {
	ver, rev = version, commit
	bi, ok := debug.ReadBuildInfo()
	if ver == "" {
		ver = "devel"
		if ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			ver = bi.Main.Version
		}
	}
	if rev == "" && ok {
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if rev != "" && modified {
			rev += " (modified)"
		}
	}
	if rev == "" {
		rev = "unknown (built without version control information)"
	}
	return ver, rev
}

// printVersion writes what --version prints: version, commit, Go version
// and the compute backends and app built in.
func printVersion(w io.Writer) {
	ver, rev := buildVersion()
	fmt.Fprintf(w, "gooseapp %s\n", ver)
	fmt.Fprintf(w, "commit:    %s\n", rev)
	fmt.Fprintf(w, "go:        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	cpu := "cpu (pure Go"
	if runtime.GOARCH == "amd64" {
		cpu += ", AVX2/FMA assembly kernels when the CPU has them"
	}
	cpu += ")"
	fmt.Fprintf(w, "backends:  %s, cuda (NVIDIA driver, NVRTC and cuBLAS loaded at run time; info --devices lists GPUs)\n", cpu)
	fmt.Fprintf(w, "app:       %s\n", guiBuilt)
}
