package kernelstest

import "testing"

// decodeCases checks batched decode and quantized weights.
func decodeCases(t *testing.T, h *H) {
	t.Skip("no cases yet")
}
