package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/goose-rwkv/goose/assets"
)

// mixedText returns about n bytes of deterministic text mixing English
// prose, Chinese, and Go-like code.
func mixedText(n int) string {
	rng := rand.New(rand.NewPCG(7, 11))
	english := strings.Fields(`the of and to in is was for that with as on by
		it at from this be are an or which have not has but were their model
		language network training data results performance however recurrent
		state attention between different during tokenizer throughout example
		quickly Beautiful morning, Assistant: User: "quoted" (parenthesized)
		question? answer! 1998 3.14159 -42 e.g. i.e. don't it's we'll`)
	chinese := []rune(`的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严`)
	code := []string{
		"func (t *Tokenizer) Encode(text string) []int32 {\n",
		"\tfor i := 0; i < len(s); i++ {\n",
		"\t\tif err != nil {\n\t\t\treturn nil, fmt.Errorf(\"read %s: %w\", path, err)\n\t\t}\n",
		"}\n\n",
		"def forward(self, x, state):\n    x = self.ln1(x)\n    return x @ self.w.T, state\n",
		"    # normalize the logits before sampling\n",
		"const std::vector<float>& weights = model.layers[i].att.key;\n",
		"SELECT id, name FROM users WHERE age > 21 ORDER BY name;\n",
		"<div class=\"row\"><span>{{ .Title }}</span></div>\n",
	}
	var sb strings.Builder
	sb.Grow(n + 256)
	for sb.Len() < n {
		switch rng.IntN(3) {
		case 0:
			for k := rng.IntN(40) + 5; k > 0; k-- {
				sb.WriteString(english[rng.IntN(len(english))])
				sb.WriteByte(' ')
			}
			sb.WriteString(".\n\n")
		case 1:
			for k := rng.IntN(60) + 5; k > 0; k-- {
				sb.WriteRune(chinese[rng.IntN(len(chinese))])
				if rng.IntN(12) == 0 {
					sb.WriteString("，")
				}
			}
			sb.WriteString("。\n")
		case 2:
			for k := rng.IntN(6) + 1; k > 0; k-- {
				sb.WriteString(code[rng.IntN(len(code))])
			}
			fmt.Fprintf(&sb, "x%d := %d\n", rng.IntN(100), rng.IntN(1e6))
		}
	}
	return sb.String()
}

func BenchmarkEncode(b *testing.B) {
	tk := mustWorld(b)
	text := mixedText(1 << 20)
	b.SetBytes(int64(len(text)))
	var ids []int32
	for b.Loop() {
		ids = tk.Encode(text)
	}
	b.ReportMetric(float64(len(text))/float64(len(ids)), "bytes/token")
}

func BenchmarkDecode(b *testing.B) {
	tk := mustWorld(b)
	text := mixedText(1 << 20)
	ids := tk.Encode(text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.Decode(ids)
	}
}

func BenchmarkDecoder(b *testing.B) {
	tk := mustWorld(b)
	text := mixedText(1 << 20)
	ids := tk.Encode(text)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		d := tk.NewDecoder()
		for _, id := range ids {
			d.Write(id)
		}
		d.Flush()
	}
}

// BenchmarkWorldBuild measures what World costs on its first call (app start):
// parsing the embedded vocabulary and building the trie.
func BenchmarkWorldBuild(b *testing.B) {
	for b.Loop() {
		if _, err := parse(assets.WorldVocab()); err != nil {
			b.Fatal(err)
		}
	}
}
