"""Segmenter must cut exactly as jieba's own ``lcut(text, HMM=True)``: same words, same order."""

import random

import jieba
import jieba.finalseg as finalseg
import pytest

import triage.segment as segment_mod
from triage.segment import Segmenter
from triage.synth import generate
from triage.tokenize import segmenter, tokenizer

# characters of every kind jieba treats differently: Han inside and beyond its block range
# (U+9FD5), Latin, digits and the symbols its blocks keep (+#&._%-), whitespace it keeps whole
# (\r\n), and punctuation, full-width forms and emoji it emits one by one
_HAN = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞"
#: beyond jieba's Han range, and inside it but unknown to its HMM (every state scores the same
#: floor there, so the Viterbi tie rules decide)
_RARE_HAN = "\u9fd6\u9fe0\u9fff\u3400\u4dbf\U00020000" + "丄丅丏両丣丩丮鿑鿒鿓鿔鿕"
_OTHER = "abcXYZ0123456789+#&._%-  \t\r\n，。！？；：“”（）《》、·～…ａｂ１２😀@/"


@pytest.fixture(autouse=True)
def _numpy_paths_for_any_batch(monkeypatch):
    """Batches here are small: lower the size below which lcut_many cuts one by one, so every
    lcut_many call below goes through the numpy route and the batched HMM
    (test_small_batches_take_the_one_by_one_path checks the defaults)."""
    monkeypatch.setattr(segment_mod, "_MIN_BATCH_CHARS", 0)
    monkeypatch.setattr(segment_mod, "_MIN_BATCH_RUNS", 0)


def _random_text(rng: random.Random, length: int, words: list[str]) -> str:
    parts = []
    while sum(map(len, parts)) < length:
        r = rng.random()
        if r < 0.35:
            parts.append(rng.choice(words))
        elif r < 0.75:
            parts.append("".join(rng.choice(_HAN) for _ in range(rng.randint(1, 6))))
        elif r < 0.8:
            parts.append("".join(rng.choice(_RARE_HAN) for _ in range(rng.randint(1, 4))))
        elif r < 0.85:
            parts.append("\r\n")
        else:
            parts.append("".join(rng.choice(_OTHER) for _ in range(rng.randint(1, 4))))
    return "".join(parts)


def _assert_same(seg: Segmenter, tk: jieba.Tokenizer, texts) -> int:
    """One text at a time (``lcut``) and all at once (``lcut_many``, the numpy route)."""
    texts = list(texts)
    want = [tk.lcut(text, HMM=True) for text in texts]
    for text, words in zip(texts, want):
        assert seg.lcut(text) == words, text
    many = seg.lcut_many(texts)
    assert len(many) == len(texts)
    for text, got, words in zip(texts, many, want):
        assert got == words, text
    return len(texts)


def test_same_words_as_jieba_on_the_corpus():
    texts = generate(n=300, seed=11)
    letters = [f"{t}\n{b}" for t, b in zip(texts["title"], texts["text"])]
    assert _assert_same(segmenter(), tokenizer(), letters) == 300


def test_same_words_as_jieba_on_random_text():
    rng = random.Random(7)
    words = [w for w, f in list(tokenizer().FREQ.items())[:: 997] if f][:300]
    texts = [_random_text(rng, rng.randint(1, 80), words) for _ in range(1500)]
    texts += ["", " ", "\r\n", "。", "跳楼机", "2024年3月5日", "3.5%", "a-b_c.d", "𠀀𠀁", "\u9fd5\u9fd6"]
    assert _assert_same(segmenter(), tokenizer(), texts) == 1510


@pytest.fixture()
def small_tokenizer(tmp_path):
    """A jieba tokenizer over a tiny dictionary: most text goes through the HMM."""
    path = tmp_path / "dict.txt"
    # 甲乙/丙 and 甲/乙丙 score exactly the same: jieba's route takes the longer first word
    path.write_text(
        "信访 50 n\n信访局 30 n\n劳动 40 n\n仲裁 40 v\n劳动仲裁 20 n\n法院 60 n\n甲 10 n\n甲乙 10 n\n乙丙 10 n\n丙 10 n\n",
        encoding="utf-8",
    )
    tk = jieba.Tokenizer(dictionary=str(path))
    tk.tmp_dir = str(tmp_path)
    tk.initialize()
    return tk


def test_same_words_with_a_small_dictionary(small_tokenizer):
    rng = random.Random(3)
    texts = [_random_text(rng, rng.randint(1, 60), ["信访局", "劳动仲裁", "法院"]) for _ in range(500)]
    assert _assert_same(Segmenter(small_tokenizer), small_tokenizer, texts) == 500


def test_route_ties_go_to_the_longer_first_word(small_tokenizer):
    assert small_tokenizer.lcut("甲乙丙") == ["甲乙", "丙"]
    assert Segmenter(small_tokenizer).lcut("甲乙丙") == ["甲乙", "丙"]
    assert Segmenter(small_tokenizer).lcut_many(["甲乙丙", "丙甲乙丙甲", "甲乙丙"]) == [small_tokenizer.lcut(t) for t in ("甲乙丙", "丙甲乙丙甲", "甲乙丙")]


def test_words_longer_than_the_numpy_keys_are_found():
    """Words of five or more characters are extended from a four-character prefix, as jieba does."""
    tk = tokenizer()
    long_words = [w for w, f in tk.FREQ.items() if f and len(w) >= 5][::40][:200]
    assert max(map(len, long_words)) >= 7
    rng = random.Random(5)
    texts = ["".join(rng.choice(long_words + list("的了，。在和是")) for _ in range(rng.randint(1, 12))) for _ in range(300)]
    texts += ["".join(long_words)]  # one long block, word after word
    many = segmenter().lcut_many(texts)
    assert sum(len(w) >= 5 for words in many for w in words) > 300
    assert _assert_same(segmenter(), tk, texts) == 301


def test_long_blocks_take_the_one_block_route_with_the_same_words(monkeypatch):
    rng = random.Random(8)
    words = [w for w, f in list(tokenizer().FREQ.items())[:: 991] if f][:300]
    long_run = "".join(rng.choice(words) for _ in range(400))  # one block well over _LONG_BLOCK
    assert len(long_run) > segment_mod._LONG_BLOCK
    texts = [long_run, "短句。" + long_run + "，结尾", "县信访局"]
    assert _assert_same(segmenter(), tokenizer(), texts) == 3
    # and with many blocks on each side of the line, mixed within letters
    monkeypatch.setattr(segment_mod, "_LONG_BLOCK", 6)
    mixed = [_random_text(rng, rng.randint(1, 80), words) for _ in range(300)]
    assert _assert_same(segmenter(), tokenizer(), mixed) == 300


def test_a_dictionary_word_with_the_batch_separator_keeps_blocks_apart(small_tokenizer):
    """The batch joins blocks with U+0000; a dictionary entry holding it turns the numpy route off."""
    small_tokenizer.add_word("乙丙\x00丁", 1000)
    seg = Segmenter(small_tokenizer)
    texts = ["甲乙丙。丁", "甲乙丙", "丁甲乙丙。"]
    assert seg.lcut_many(texts) == [small_tokenizer.lcut(t, HMM=True) for t in texts]


def test_long_unknown_runs_are_tagged_one_by_one_with_the_same_tags():
    seg = segmenter()
    rng = random.Random(4)
    long_run = "".join(rng.choice(_RARE_HAN[6:]) for _ in range(segment_mod._LONG_BLOCK + 50))
    runs = [long_run, "丄丅", long_run[:7]]
    want = ["".join(finalseg.viterbi(r, "BMES", finalseg.start_P, finalseg.trans_P, finalseg.emit_P)[1]) for r in runs]
    assert seg._viterbi_many(runs) == want
    assert _assert_same(seg, tokenizer(), ["一" + long_run + "。信访", long_run]) == 2


def test_small_batches_take_the_one_by_one_path_with_the_same_words(monkeypatch):
    monkeypatch.setattr(segment_mod, "_MIN_BATCH_CHARS", 3000)
    monkeypatch.setattr(segment_mod, "_MIN_BATCH_RUNS", 80)
    seg = Segmenter(tokenizer())
    routes = []
    real = segment_mod._RouteArrays.routes
    monkeypatch.setattr(segment_mod._RouteArrays, "routes", lambda self, *a: routes.append(len(a[0])) or real(self, *a))
    texts = generate(n=40, seed=12)
    letters = [f"{t}\n{b}" for t, b in zip(texts["title"], texts["text"])]
    assert _assert_same(seg, tokenizer(), letters[:1]) == 1  # one letter: no numpy solve
    assert routes == []
    assert _assert_same(seg, tokenizer(), letters) == 40  # forty: one solve for the batch
    assert len(routes) == 1


def test_prepare_builds_the_batch_tables_before_any_batch(small_tokenizer, monkeypatch):
    monkeypatch.setattr(segment_mod, "_MIN_BATCH_CHARS", 3000)  # one letter alone would not build them
    seg = Segmenter(small_tokenizer)
    seg.lcut_many(["信访局"])
    assert seg._arrays is None
    seg.prepare()
    built = seg._arrays
    assert built  # a _RouteArrays
    text = "劳动仲裁的事向信访局反映，" * 300  # a batch large enough to use them: no rebuild
    assert seg.lcut_many([text]) == [small_tokenizer.lcut(text, HMM=True)]
    assert seg._arrays is built


def test_lcut_many_of_nothing():
    assert segmenter().lcut_many([]) == []
    assert segmenter().lcut_many(["", "。", " "]) == [[], ["。"], [" "]]


def test_viterbi_as_jieba_where_its_scores_tie():
    """Characters the HMM does not know score the same floor in every state, so jieba's
    max() tie rules decide the tags; ``要这这法法法定生要对`` needs the rule for E."""
    seg = Segmenter(tokenizer())
    rng = random.Random(1)
    pool = "丄丅丏両丣丩丮鿑鿒鿓鿔鿕信访法院的是了人一不在有我他这中大来上个国们到说和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从"
    texts = ["要这这法法法定生要对"] + ["".join(rng.choice(pool) for _ in range(rng.randint(1, 10))) for _ in range(20000)]
    for obs in texts:
        assert seg._viterbi(obs) == finalseg.viterbi(obs, "BMES", finalseg.start_P, finalseg.trans_P, finalseg.emit_P)[1], obs


def test_batched_viterbi_as_jieba_where_its_scores_tie():
    """All runs at once (``_viterbi_many``, what ``lcut_many`` uses): the same tags as jieba's
    viterbi for runs of every length side by side, ties included."""
    seg = Segmenter(tokenizer())
    rng = random.Random(2)
    pool = "丄丅丏両丣丩丮鿑鿒鿓鿔鿕信访法院的是了人一不在有我他这中大来上个国们到说和地也子时道出而要于就下得可你年生自会那后"
    runs = ["要这这法法法定生要对", "信", "丄丅"] + ["".join(rng.choice(pool) for _ in range(rng.randint(1, 25))) for _ in range(5000)]
    want = ["".join(finalseg.viterbi(r, "BMES", finalseg.start_P, finalseg.trans_P, finalseg.emit_P)[1]) for r in runs]
    assert seg._viterbi_many(runs) == want
    assert seg._viterbi_many(runs[:1]) == want[:1]
    assert seg._viterbi_many([]) == []


def test_words_added_later_are_used(small_tokenizer):
    seg = Segmenter(small_tokenizer)
    text = "县信访局答复说要走劳动人事争议仲裁程序"
    assert "争议仲裁" not in seg.lcut(text)
    assert seg.lcut_many([text]) == [seg.lcut(text)]  # the numpy tables are built now
    small_tokenizer.add_word("争议仲裁", 1000)
    assert "争议仲裁" in seg.lcut(text)
    assert seg.lcut(text) == small_tokenizer.lcut(text, HMM=True)
    assert seg.lcut_many([text]) == [small_tokenizer.lcut(text, HMM=True)]  # and rebuilt


def test_words_deleted_or_retuned_later_are_seen(small_tokenizer, monkeypatch):
    """del_word and suggest_freq(..., True) can leave jieba's total unchanged (frequency 0)."""
    monkeypatch.setattr(finalseg, "Force_Split_Words", set(finalseg.Force_Split_Words))  # del_word adds to this global
    seg = Segmenter(small_tokenizer)
    text = "县信访局要走劳动仲裁，法院判了"
    assert "劳动仲裁" in seg.lcut(text)
    assert "劳动仲裁" in seg.lcut_many([text])[0]
    small_tokenizer.del_word("劳动仲裁")
    assert "劳动仲裁" not in seg.lcut(text)
    assert seg.lcut(text) == small_tokenizer.lcut(text, HMM=True)
    assert seg.lcut_many([text]) == [small_tokenizer.lcut(text, HMM=True)]
    small_tokenizer.suggest_freq(("法", "院"), True)
    assert seg.lcut(text) == small_tokenizer.lcut(text, HMM=True)
    assert seg.lcut_many([text]) == [small_tokenizer.lcut(text, HMM=True)]
    small_tokenizer.add_word("劳动仲裁", 5)
    small_tokenizer.del_word("劳动仲裁")
    assert seg.lcut(text) == small_tokenizer.lcut(text, HMM=True)
    assert seg.lcut_many([text]) == [small_tokenizer.lcut(text, HMM=True)]


def test_force_split_words_are_honoured(small_tokenizer, monkeypatch):
    seg = Segmenter(small_tokenizer)
    text = "县信访局答复说要走程序"
    found = [w for w in small_tokenizer.lcut(text) if len(w) > 1 and w not in small_tokenizer.FREQ]
    assert found, "the HMM should have made at least one word here"
    monkeypatch.setattr(finalseg, "Force_Split_Words", {found[0]})
    assert found[0] not in seg.lcut(text)
    assert seg.lcut(text) == small_tokenizer.lcut(text, HMM=True)
    assert seg.lcut_many([text]) == [small_tokenizer.lcut(text, HMM=True)]
