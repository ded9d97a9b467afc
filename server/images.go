package server

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"slices"
	"strings"
	"time"

	"github.com/goose-rwkv/goose/core"
	"github.com/goose-rwkv/goose/core/tokenizer"
	"github.com/goose-rwkv/goose/kernels"
	"github.com/goose-rwkv/goose/vision"
	"github.com/goose-rwkv/goose/vision/preprocess"
)

// Images in chat messages (VisualRWKV-7). A user message's content may
// hold OpenAI-style image parts,
//
//	{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}
//
// with the image inline as a base64 data: URL (PNG, JPEG or GIF). Remote
// URLs are not fetched: the server works offline.

// DefaultMaxImageBytes is the default largest image (encoded) a request
// may carry.
const DefaultMaxImageBytes = 20 << 20

// maxImages is the most images one request may carry.
const maxImages = 8

// contentPart is one element of a message's content array.
type contentPart struct {
	Type     string          `json:"type"`
	Text     *string         `json:"text"`
	ImageURL json.RawMessage `json:"image_url"`
}

// segment is a piece of a prompt with images: tokens, or one image whose
// embedding rows the encoder gives.
type segment struct {
	ids []int32
	img image.Image
}

// imageURL reads an image_url part's URL: {"url": "..."} or a bare string.
func imageURL(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var u struct {
		URL string `json:"url"`
	}
	if err := json.Unmarshal(raw, &u); err != nil || u.URL == "" {
		return "", fmt.Errorf("image_url must be an object {\"url\": \"data:image/png;base64,...\"}")
	}
	return u.URL, nil
}

// decodeDataURL decodes an image from a data: URL holding base64 PNG, JPEG
// or GIF data of at most maxBytes bytes, with preprocess.Decode's limits
// on its dimensions.
func decodeDataURL(url string, maxBytes int) (image.Image, error) {
	lower := strings.ToLower(url)
	if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") || strings.HasPrefix(lower, "file:") {
		return nil, fmt.Errorf("remote image URLs are not fetched (this server works offline): send the image inline as a data: URL, data:image/png;base64,... or data:image/jpeg;base64,...")
	}
	meta, data, ok := strings.Cut(url, ",")
	if !strings.HasPrefix(lower, "data:") || !ok {
		return nil, fmt.Errorf("the image URL is not a data: URL (want data:image/png;base64,... or data:image/jpeg;base64,...)")
	}
	mediaType, params, _ := strings.Cut(strings.ToLower(meta[len("data:"):]), ";")
	if !slices.Contains(strings.Split(params, ";"), "base64") {
		return nil, fmt.Errorf("the data: URL is not base64-encoded (want data:%s;base64,...)", mediaType)
	}
	switch mediaType {
	case "image/png", "image/jpeg", "image/jpg", "image/gif", "":
	default:
		return nil, fmt.Errorf("image type %q is not supported: send PNG, JPEG or GIF", mediaType)
	}
	if n := base64.StdEncoding.DecodedLen(len(data)); n > maxBytes+3 {
		return nil, fmt.Errorf("the image is about %d bytes, over this server's limit of %d bytes", n, maxBytes)
	}
	raw, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(data); err != nil {
			return nil, fmt.Errorf("the image data is not valid base64: %v", err)
		}
	}
	if len(raw) > maxBytes {
		return nil, fmt.Errorf("the image is %d bytes, over this server's limit of %d bytes", len(raw), maxBytes)
	}
	img, err := preprocess.Decode(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the image cannot be read: %v", err)
	}
	return img, nil
}

// imagePrompt renders a conversation with images in VisualRWKV-7's
// format (vision.Prompt), each image's place holding that image. rows is
// the number of embedding rows one image becomes.
func imagePrompt(tok *tokenizer.Tokenizer, turns []vision.Turn, images []image.Image, rows int) (segs []segment, total int) {
	pieces, total := vision.Prompt(tok, turns, rows)
	next := 0
	for _, p := range pieces {
		if p.Tokens != nil {
			segs = append(segs, segment{ids: p.Tokens})
			continue
		}
		segs = append(segs, segment{img: images[next]})
		next++
	}
	return segs, total
}

// generateWithImages prefills a prompt with images (never cached) and
// generates: every segment but the prompt's last token is fed, images
// through the encoder onto the session's backend, then the reply. Each
// image's rows go in one pass with the text before it (and, for the last
// image, the text after it): core.Session.PrefillSegments.
func (s *Server) generateWithImages(ctx context.Context, wk *worker, j *job, yield func(core.Piece) bool) (*outcome, error) {
	start := time.Now()
	sess := wk.sess
	out := &outcome{promptTokens: j.promptRows}
	if err := sess.Reset(); err != nil {
		return nil, err
	}
	segs := j.segs
	lastSeg := segs[len(segs)-1]
	last := lastSeg.ids[len(lastSeg.ids)-1:]
	segs = append(segs[:len(segs)-1:len(segs)-1], segment{ids: lastSeg.ids[:len(lastSeg.ids)-1]})
	lastImg := -1
	for i, sg := range segs {
		if sg.img != nil {
			lastImg = i
		}
	}
	// Text is held back until the next image; the segments after the last
	// image go in with it. (parseChat makes segs only for prompts with
	// images.)
	var text []int32 // tokens not fed yet
	for i, sg := range segs[:lastImg+1] {
		if sg.img == nil {
			text = append(text, sg.ids...)
			continue
		}
		err := s.opts.Vision.Encode(ctx, sg.img, nil, func(rows kernels.Tensor) error {
			ps := []core.Segment{{Tokens: text}, {Rows: rows}}
			if i == lastImg {
				for _, after := range segs[i+1:] {
					ps = append(ps, core.Segment{Tokens: after.ids})
				}
			}
			return sess.PrefillSegments(ctx, ps...)
		})
		text = nil
		if err != nil {
			if ctx.Err() != nil {
				out.stats.StopReason = core.StopCancelled
				return out, nil
			}
			return nil, fmt.Errorf("prefill: %w", err)
		}
	}
	before := time.Since(start)
	stats, _, err := sess.GenerateTokens(ctx, last, j.opts, yield)
	out.stats = stats
	out.prefill = before + stats.Prefill
	out.ttft = before + stats.TimeToFirstToken
	return out, err
}

// messageContent reads message i's content: a string, null, or an array
// of text and (when lim allows images) image_url parts.
func messageContent(raw json.RawMessage, i int, lim limits) (string, []image.Image, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		text, err := messageText(raw)
		if err != nil {
			return "", nil, invalid(fmt.Sprintf("messages[%d].content", i), "invalid_value", "%v", err)
		}
		return text, nil, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", nil, invalid(fmt.Sprintf("messages[%d].content", i), "invalid_value",
			"content must be a string or an array of {\"type\":\"text\",\"text\":...} or {\"type\":\"image_url\",\"image_url\":{\"url\":...}} parts")
	}
	var texts []string
	var imgs []image.Image
	for k, p := range parts {
		param := fmt.Sprintf("messages[%d].content[%d]", i, k)
		switch {
		case p.Type == "text" && p.Text != nil:
			texts = append(texts, *p.Text)
		case p.Type == "image_url" && !lim.vision:
			return "", nil, invalid(fmt.Sprintf("messages[%d].content", i), "unsupported_value",
				"content part %d is an image, but this model does not read images: serve a VisualRWKV-7 checkpoint to send image_url parts", k)
		case p.Type == "image_url":
			url, err := imageURL(p.ImageURL)
			if err != nil {
				return "", nil, invalid(param+".image_url", "invalid_value", "%v", err)
			}
			img, err := decodeDataURL(url, lim.maxImageBytes)
			if err != nil {
				return "", nil, invalid(param+".image_url", "invalid_image", "%v", err)
			}
			imgs = append(imgs, img)
		default:
			what := "only text parts are supported"
			if lim.vision {
				what = "only text and image_url parts are supported"
			}
			return "", nil, invalid(fmt.Sprintf("messages[%d].content", i), "invalid_value", "content part %d has type %q: %s", k, p.Type, what)
		}
	}
	return strings.Join(texts, "\n"), imgs, nil
}
