// Package posixlocale, imported for its side effect, lets the desktop
// toolkit read the C and POSIX locales as English.
//
// Debian's default locale is C.UTF-8. Fyne parses the locale environment
// as a BCP 47 language tag when its packages initialise, and "C" is not
// one: every program that links Fyne, even one that never opens a window,
// would log "Fyne error: Error parsing user locale C" at start-up. The C
// locale means "no localisation", which is English, so this package sets
// LANGUAGE=en for it (LANGUAGE is what the toolkit reads first when the
// locale is not exactly "C"; C programs ignore it under the C locale).
//
// It must run before Fyne's packages initialise. Go initialises packages
// in import-path order among those whose imports are done; this package
// imports only os, which the standard log package also imports, and its
// path sorts before "log", so it runs before log, and so before anything
// that can log through Fyne. The test in cmd/gooseapp checks the built
// binary.
package posixlocale

import "os"

func init() {
	if k, v, ok := fix(os.Getenv); ok {
		os.Setenv(k, v)
	}
}

// fix returns the variable to set, if any, for the environment getenv
// reads: LANGUAGE=en when the locale in effect (LC_ALL, else LC_MESSAGES,
// else LANG, as the toolkit reads them) is C or POSIX with a codeset or
// modifier, like C.UTF-8, and LANGUAGE is unset.
func fix(getenv func(string) string) (key, value string, ok bool) {
	loc := ""
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if loc = getenv(k); loc != "" {
			break
		}
	}
	if loc == "C" || loc == "POSIX" || getenv("LANGUAGE") != "" {
		return "", "", false // the toolkit reads these as English itself
	}
	lang := loc
	for i := 0; i < len(lang); i++ {
		if c := lang[i]; c == '.' || c == '@' || c == '_' {
			lang = lang[:i]
			break
		}
	}
	if lang != "C" && lang != "POSIX" {
		return "", "", false
	}
	return "LANGUAGE", "en", true
}
