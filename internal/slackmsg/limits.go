package slackmsg

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Slack's documented Block Kit limits (api.slack.com/reference/block-kit) that Lethe's messages
// must keep; Slack refuses a message that breaks one (invalid_blocks).
const (
	maxMessageBlocks = 50
	maxModalBlocks   = 100
	maxFieldText     = 2000
	maxFields        = 10
	maxHeaderText    = 150
	maxID            = 255
	maxButtonText    = 75
	maxButtonValue   = 2000
	maxElements      = 25
	maxOptions       = 25 // Lethe's own bound; Slack's are 100 (selects) and 10 (checkboxes)
	maxModalTitle    = 24
	maxMetadata      = 3000
)

var (
	messageBlocks = map[string]bool{"section": true, "actions": true, "context": true, "header": true, "divider": true}
	modalBlocks   = map[string]bool{"section": true, "actions": true, "context": true, "header": true, "divider": true, "input": true}
	emailLike     = regexp.MustCompile(`[A-Za-z0-9._%+\-*]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}`)
	masked        = regexp.MustCompile(`^[^@*]\*\*\*@`)
)

// CheckMessage checks a message's blocks (their JSON, as posted) against Slack's limits, and
// that no email address in it is shown unmasked.
func CheckMessage(blocks []byte) error { return check(blocks, false) }

// CheckModal checks a modal view's JSON likewise.
func CheckModal(view []byte) error {
	var v map[string]any
	if err := json.Unmarshal(view, &v); err != nil {
		return fmt.Errorf("decoding the modal: %w", err)
	}
	for _, k := range []string{"title", "submit", "close"} {
		if t, ok := v[k].(map[string]any); ok && runes(t["text"]) > maxModalTitle {
			return fmt.Errorf("modal %s is longer than %d characters", k, maxModalTitle)
		}
	}
	if runes(v["private_metadata"]) > maxMetadata || runes(v["callback_id"]) > maxID {
		return errors.New("modal private_metadata or callback_id is too long")
	}
	raw, _ := json.Marshal(v["blocks"])
	return check(raw, true)
}

func check(raw []byte, modal bool) error {
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return fmt.Errorf("decoding the blocks: %w", err)
	}
	if shownUnmasked(blocks) {
		return errors.New("an email address is shown unmasked")
	}
	allowed, most := messageBlocks, maxMessageBlocks
	if modal {
		allowed, most = modalBlocks, maxModalBlocks
	}
	if len(blocks) > most {
		return fmt.Errorf("%d blocks, more than %d", len(blocks), most)
	}
	for i, b := range blocks {
		typ, _ := b["type"].(string)
		if !allowed[typ] {
			return fmt.Errorf("block %d: type %q is not allowed here", i, typ)
		}
		if err := checkBlock(typ, b); err != nil {
			return fmt.Errorf("block %d (%s): %w", i, typ, err)
		}
	}
	return nil
}

func checkBlock(typ string, b map[string]any) error {
	if runes(b["block_id"]) > maxID {
		return fmt.Errorf("block_id longer than %d", maxID)
	}
	text, _ := b["text"].(map[string]any)
	switch typ {
	case "section":
		if runes(text["text"]) > MaxSectionText {
			return fmt.Errorf("text longer than %d characters", MaxSectionText)
		}
		fields, _ := b["fields"].([]any)
		if len(fields) > maxFields {
			return fmt.Errorf("%d fields, more than %d", len(fields), maxFields)
		}
		for _, f := range fields {
			if f, _ := f.(map[string]any); runes(f["text"]) > maxFieldText {
				return fmt.Errorf("a field longer than %d characters", maxFieldText)
			}
		}
	case "header":
		if runes(text["text"]) > maxHeaderText {
			return fmt.Errorf("text longer than %d characters", maxHeaderText)
		}
	}
	elements, _ := b["elements"].([]any)
	if el, ok := b["element"]; ok {
		elements = append(elements, el)
	}
	if len(elements) > maxElements {
		return fmt.Errorf("%d elements, more than %d", len(elements), maxElements)
	}
	for _, e := range elements {
		e, _ := e.(map[string]any)
		if runes(e["action_id"]) > maxID {
			return fmt.Errorf("action_id longer than %d", maxID)
		}
		if e["type"] == "button" {
			t, _ := e["text"].(map[string]any)
			if runes(t["text"]) > maxButtonText || runes(e["value"]) > maxButtonValue {
				return errors.New("button text or value too long")
			}
		}
		if opts, _ := e["options"].([]any); len(opts) > maxOptions {
			return fmt.Errorf("%d options, more than %d", len(opts), maxOptions)
		}
	}
	return nil
}

// UnmaskedEmail returns the first email address in s not masked as Mask does, or "".
func UnmaskedEmail(s string) string {
	for _, m := range emailLike.FindAllString(s, -1) {
		if !masked.MatchString(m) && !strings.HasPrefix(m, "***@") {
			return m
		}
	}
	return ""
}

// shownUnmasked walks every string of a decoded JSON value.
func shownUnmasked(v any) bool {
	switch x := v.(type) {
	case string:
		return UnmaskedEmail(x) != ""
	case []any:
		for _, e := range x {
			if shownUnmasked(e) {
				return true
			}
		}
	case []map[string]any:
		for _, e := range x {
			if shownUnmasked(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if shownUnmasked(e) {
				return true
			}
		}
	}
	return false
}

func runes(v any) int {
	s, _ := v.(string)
	return utf8.RuneCountInString(s)
}
