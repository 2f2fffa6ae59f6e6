"""jieba's precise-mode segmentation (HMM on), computed the same way in less time.

``Segmenter(tk).lcut(text)`` returns exactly ``tk.lcut(text, HMM=True)`` for a
``jieba.Tokenizer`` ``tk``: the same dictionary, the same maximum-probability route through the
word graph, the same tie-breaking, the same floating-point sums, and jieba's own HMM tables
(``jieba.finalseg``) for runs of characters the dictionary does not know.  It is about twice as
fast because it skips what jieba builds only to throw away:

- the word graph (a dict of lists per block) and the route (a dict of tuples) become two flat
  lists filled in one backward pass; ``log(freq) - log(total)`` is looked up, not recomputed;
- the HMM keeps four running scores and back-pointers instead of copying a path list per
  character and state (quadratic in the run's length);
- no generator is resumed per word; ``re.split`` alternates matches and gaps, so the blocks
  need no second regex match.

The equality is a tested contract (``tests/test_segment.py``: the synthetic corpus and random
strings of CJK, Latin, digits, punctuation and whitespace).  Changes made to ``tk`` after the
segmenter was built through jieba's own API (``add_word``, ``del_word``, ``suggest_freq``,
``load_userdict``, which all go through ``add_word``) rebuild the table on the next cut; so does
a changed dictionary total.  Writing into ``tk.FREQ`` directly is not seen: call
:meth:`Segmenter.invalidate` after doing that.
"""

from __future__ import annotations

import math
import threading

import jieba
import jieba.finalseg as finalseg

#: jieba's own patterns: blocks it segments (Han, Latin, digits, a few symbols), whitespace it keeps
_RE_BLOCK = jieba.re_han_default
_RE_SPACE = jieba.re_skip_default
#: the HMM's own patterns for a run of single characters
_RE_HMM_HAN = finalseg.re_han
_RE_HMM_SKIP = finalseg.re_skip
_MIN_FLOAT = finalseg.MIN_FLOAT
_STATE = {"B": 0, "M": 1, "E": 2, "S": 3}


class Segmenter:
    """Precise-mode, HMM-on segmentation of ``tk`` (a ``jieba.Tokenizer``), identical to its
    ``lcut(text, HMM=True)``."""

    def __init__(self, tk: jieba.Tokenizer):
        self.tk = tk
        self._lock = threading.Lock()
        self._total = None
        # jieba's del_word/suggest_freq/load_userdict all call add_word; a frequency of 0 leaves
        # the total unchanged, so the total alone cannot tell that the dictionary changed
        add_word = tk.add_word

        def add_word_and_invalidate(word, freq=None, tag=None):
            add_word(word, freq, tag)
            self.invalidate()

        tk.add_word = add_word_and_invalidate
        tm = finalseg.trans_P
        # the eight transitions the Viterbi step uses (B<-E,S  M<-M,B  S<-S,E  E<-B,M)
        self._trans = (tm["E"]["B"], tm["S"]["B"], tm["M"]["M"], tm["B"]["M"],
                       tm["S"]["S"], tm["E"]["S"], tm["B"]["E"], tm["M"]["E"])
        self._start = tuple(finalseg.start_P[s] for s in "BMES")
        self._emit = tuple(finalseg.emit_P[s] for s in "BMES")

    def invalidate(self) -> None:
        """Rebuild the word table from ``tk`` before the next cut."""
        self._total = None

    def _table(self) -> dict:
        """word -> log(freq) - log(total) for dictionary words, None for prefixes that are not
        words (jieba keeps them at frequency 0 so a scan knows when to stop)."""
        tk = self.tk
        tk.check_initialized()
        if self._total is None or self._total != tk.total:
            with self._lock:
                if self._total is None or self._total != tk.total:
                    logtotal = math.log(tk.total)
                    self._logp = {w: (math.log(f) - logtotal if f else None) for w, f in tk.FREQ.items()}
                    self._unknown = math.log(1) - logtotal  # jieba: log(FREQ.get(c) or 1) - logtotal
                    self._total = tk.total
        return self._logp

    # -- the dictionary route ---------------------------------------------------------------
    def _route(self, s: str, logp: dict) -> list[int]:
        """For each position, the last index of the word that starts there on jieba's
        maximum-probability route (``calc`` over ``get_DAG``; ties go to the longer word)."""
        n = len(s)
        score = [0.0] * (n + 1)
        nxt = [0] * n
        get = logp.get
        missing = _MISSING
        unknown = self._unknown
        for idx in range(n - 1, -1, -1):
            best = None
            end = idx
            i = idx
            frag = s[idx]
            while True:
                lp = get(frag, missing)
                if lp is missing:
                    break
                if lp is not None:
                    v = lp + score[i + 1]
                    if best is None or v >= best:
                        best, end = v, i
                i += 1
                if i >= n:
                    break
                frag = s[idx : i + 1]
            score[idx] = unknown + score[idx + 1] if best is None else best
            nxt[idx] = end
        return nxt

    # -- the HMM for unknown runs -------------------------------------------------------------
    def _viterbi(self, obs: str) -> list[str]:
        """``finalseg.viterbi(obs, 'BMES', ...)[1]`` with back-pointers; max() tie rules kept."""
        eb_, em_, ee_, es_ = (d.get for d in self._emit)
        t_eb, t_sb, t_mm, t_bm, t_ss, t_es, t_be, t_me = self._trans
        lo = _MIN_FLOAT
        c = obs[0]
        sb, sm, se, ss = self._start
        vb, vm, ve, vs = sb + eb_(c, lo), sm + em_(c, lo), se + ee_(c, lo), ss + es_(c, lo)
        back = []
        for c in obs[1:]:
            eb, em, ee, es = eb_(c, lo), em_(c, lo), ee_(c, lo), es_(c, lo)
            # max((score, state)) picks the higher score and, on a tie, the later letter
            a, b = ve + t_eb + eb, vs + t_sb + eb
            nb, pb = (a, "E") if a > b else (b, "S")
            a, b = vm + t_mm + em, vb + t_bm + em
            nm, pm = (b, "B") if b > a else (a, "M")
            a, b = vs + t_ss + es, ve + t_es + es
            ns, ps = (b, "E") if b > a else (a, "S")
            a, b = vb + t_be + ee, vm + t_me + ee
            ne, pe = (a, "B") if a > b else (b, "M")
            back.append((pb, pm, pe, ps))
            vb, vm, ve, vs = nb, nm, ne, ns
        state = "S" if vs >= ve else "E"
        path = [state] * len(obs)
        for t in range(len(obs) - 1, 0, -1):
            state = back[t - 1][_STATE[state]]
            path[t - 1] = state
        return path

    def _hmm_words(self, s: str, out: list[str]) -> None:
        """``finalseg.__cut``: words from the B/M/E/S tags of a Han run."""
        begin = nexti = 0
        for i, tag in enumerate(self._viterbi(s)):
            if tag == "B":
                begin = i
            elif tag == "E":
                out.append(s[begin : i + 1])
                nexti = i + 1
            elif tag == "S":
                out.append(s[i])
                nexti = i + 1
        if nexti < len(s):
            out.append(s[nexti:])

    def _hmm(self, buf: str, out: list[str]) -> None:
        """``finalseg.cut``: Han runs through the HMM, the rest split on Latin/digit runs."""
        force = finalseg.Force_Split_Words
        for k, part in enumerate(_RE_HMM_HAN.split(buf)):
            if k % 2:  # split() with a group: odd items are the Han runs
                if force:
                    words: list[str] = []
                    self._hmm_words(part, words)
                    for w in words:
                        if w in force:  # jieba.del_word: shown as single characters
                            out.extend(w)
                        else:
                            out.append(w)
                else:
                    self._hmm_words(part, out)
            elif part:
                out.extend(x for x in _RE_HMM_SKIP.split(part) if x)

    def _block(self, s: str, logp: dict, out: list[str]) -> None:
        """``Tokenizer.__cut_DAG``: follow the route; runs of single characters that do not
        form a dictionary word go through the HMM."""
        nxt = self._route(s, logp)
        x, n, buf = 0, len(s), ""
        while x < n:
            y = nxt[x] + 1
            if y - x == 1:
                buf += s[x]
            else:
                if buf:
                    self._flush(buf, logp, out)
                    buf = ""
                out.append(s[x:y])
            x = y
        if buf:
            self._flush(buf, logp, out)

    def _flush(self, buf: str, logp: dict, out: list[str]) -> None:
        if len(buf) == 1:
            out.append(buf)
        elif not logp.get(buf):  # not a word (jieba: not FREQ.get(buf)); log-probs are < 0
            self._hmm(buf, out)
        else:
            out.extend(buf)

    def lcut(self, text: str) -> list[str]:
        """The words of ``text``, whitespace included, exactly as ``tk.lcut(text, HMM=True)``."""
        logp = self._table()
        out: list[str] = []
        for k, block in enumerate(_RE_BLOCK.split(text)):
            if not block:
                continue
            if k % 2:
                self._block(block, logp, out)
            else:  # between blocks: whitespace runs kept whole, anything else one character each
                for j, piece in enumerate(_RE_SPACE.split(block)):
                    if j % 2:
                        out.append(piece)
                    else:
                        out.extend(piece)
        return out


_MISSING = object()
