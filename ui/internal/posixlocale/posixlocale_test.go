package posixlocale

import "testing"

func TestFix(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want bool // sets LANGUAGE=en
	}{
		{map[string]string{"LANG": "C.UTF-8"}, true},
		{map[string]string{"LANG": "C.utf8"}, true},
		{map[string]string{"LANG": "POSIX.UTF-8"}, true},
		{map[string]string{"LC_ALL": "C.UTF-8", "LANG": "de_DE.UTF-8"}, true},
		{map[string]string{"LC_MESSAGES": "C.UTF-8", "LANG": "de_DE.UTF-8"}, true},
		{map[string]string{"LC_ALL": "de_DE.UTF-8", "LANG": "C.UTF-8"}, false}, // LC_ALL wins
		{map[string]string{"LANG": "C"}, false},                                // read as English already
		{map[string]string{"LANG": "POSIX"}, false},
		{map[string]string{"LANG": "C.UTF-8", "LANGUAGE": "fr"}, false}, // the user's choice stands
		{map[string]string{"LANG": "en_US.UTF-8"}, false},
		{map[string]string{"LANG": "ca_ES.UTF-8"}, false}, // Catalan starts with C but is not it
		{map[string]string{}, false},
	} {
		k, v, ok := fix(func(k string) string { return c.env[k] })
		if ok != c.want || (ok && (k != "LANGUAGE" || v != "en")) {
			t.Errorf("%v: got %s=%s %v, want LANGUAGE=en %v", c.env, k, v, ok, c.want)
		}
	}
}
