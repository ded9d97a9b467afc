package ui

import (
	"context"
	"image"

	"github.com/goose-rwkv/goose/ui/history"
)

// Engine is what the app needs from the inference engine. The app calls it
// only from background goroutines, never from the UI goroutine, and never
// from two goroutines at once. CoreEngine is the real one; tests use fakes.
type Engine interface {
	// Load loads the model file at path and reports progress in [0, 1].
	// The loaded model, if any, is replaced only once the new one is
	// ready: when loading fails it stays loaded (unless it had to be freed
	// to make room, which Info then shows). Replacing a model closes the
	// chats made on it.
	Load(ctx context.Context, path string, opts LoadOptions, progress func(frac float64)) (ModelInfo, error)
	// Unload frees the loaded model, if any.
	Unload() error
	// Info describes the loaded model, with current memory figures; ok is
	// false when none is loaded.
	Info() (info ModelInfo, ok bool)
	// NewChat starts a conversation session at the zero state.
	NewChat() (Chat, error)
}

// LoadOptions select where a model runs.
type LoadOptions struct {
	// Backend is "auto", "cpu" or "cuda".
	Backend string
	// Threads for the CPU; 0 means all cores.
	Threads int
	// Quant is "none" (or empty) or "int8": see core.ParseQuantization.
	Quant string
}

// ModelInfo describes a loaded model and the device it runs on.
type ModelInfo struct {
	Path string
	// Name is the file name without extension.
	Name string
	// Summary describes the dimensions: "24 layers × 1024, vocab 65536, bf16".
	Summary string
	// Backend is the backend in use: "cpu" or "cuda".
	Backend string
	// Device is the CPU or GPU name.
	Device string
	// Fallback is why the GPU is not used, when "auto" chose the CPU.
	Fallback string
	// WeightBytes is the memory the weights take; StateBytes one state's.
	WeightBytes, StateBytes int64
	// Quant names the weights' encoding in memory when quantized ("int8"),
	// and SavedBytes is the memory that saves against the file's dtype.
	Quant      string
	SavedBytes int64
	// DeviceTotal and DeviceFree are the GPU's memory; 0 when unknown.
	DeviceTotal, DeviceFree int64
	// StateKey identifies the model for stored states: a state saved with
	// one key is only restored into a model with the same key.
	StateKey string
	// Vision is true for a VisualRWKV-7 checkpoint, whose chats accept
	// images (Chat.PrefillImages).
	Vision bool
}

// GenParams control one reply.
type GenParams struct {
	Sampling history.Sampling
	// Stop strings end the reply (the chat uses "\n\n").
	Stop []string
}

// GenResult describes a finished reply.
type GenResult struct {
	Tokens       int
	TokensPerSec float64
	// Cancelled is true when ctx was cancelled (Stop).
	Cancelled bool
	// EndedTurn is true when a stop string ended the reply, so the state
	// already ends with the turn separator.
	EndedTurn bool
}

// Chat is one conversation's session with the model: a recurrent state
// that prompts advance.
type Chat interface {
	// Reset returns to the zero state.
	Reset() error
	// Restore continues from a state produced by Snapshot.
	Restore(state []byte) error
	// Snapshot serializes the current state.
	Snapshot() ([]byte, error)
	// Prefill feeds text into the state without generating.
	Prefill(ctx context.Context, text string) error
	// PrefillImages encodes imgs with the model's image encoder and feeds
	// them with question as one user turn ending in "Assistant:", so that
	// Generate with an empty prompt answers it. Encoding stops when ctx is
	// cancelled; it can take seconds an image on the CPU. It fails for a
	// model without vision.
	PrefillImages(ctx context.Context, imgs []image.Image, question string) error
	// Generate feeds prompt and samples a reply, calling onPiece with each
	// piece of text (whole UTF-8 characters). Cancelling ctx stops within
	// one token and is not an error.
	Generate(ctx context.Context, prompt string, p GenParams, onPiece func(string)) (GenResult, error)
	// Close frees the session.
	Close()
}
