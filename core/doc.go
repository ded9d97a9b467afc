// Package core is Goose's RWKV-7 ("Goose", x070) language-model engine.
//
// A Model holds a checkpoint's weights on a compute backend (kernels.Backend:
// the CPU or a CUDA GPU). Load and LoadFile read every dimension from the
// tensor shapes and check each tensor by name; Inspect does the checking
// without loading. Model.Forward feeds tokens and returns logits: one token
// runs in RNN mode, several in sequence mode (matrix-matrix products), and
// both compute the same function. ForwardEmbeds feeds embedding rows, such
// as an image's projected features, between tokens.
//
// The whole context lives in a State of fixed size (per layer two shift
// vectors and the float32 WKV matrices): it can be cloned, serialized with
// MarshalBinary and restored, so a conversation continues without
// re-reading it, and memory does not grow with the context.
//
// A Session pairs a model, a state and the World tokenizer for chat:
// Generate streams a reply piece by piece, stops on end of text, stop
// strings or a token limit, and is cancelled through its context between
// tokens and prefill chunks. ChatPrompt and ChatTurn render the World chat
// format ("User: …\n\nAssistant:").
//
// Where each operation of the model is:
//
//	model.go    loading, tensor names and shapes, Config
//	forward.go  the block math: time mix (token shift, LoRAs, WKV, group norm,
//	            bonus, gate) and channel mix, per layer; chunking; the decode graph
//	state.go    State and its binary format
//	session.go  Session, Generate, stop strings
//	chat.go     the World chat format
//	random.go   random weights at the official shapes (benchmarks, tests)
package core
