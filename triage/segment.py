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

``Segmenter.lcut_many(texts)`` cuts a batch (what the scorer does), with the same words in
about half the time of ``lcut`` one text at a time: the route through the word graph of all the batch's blocks is
solved at once in numpy (:class:`_RouteArrays`), and so are the HMM's tags for all the runs the
dictionary does not cover (:meth:`Segmenter._viterbi_many`).

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
        self._arrays = None
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
        self._arrays = None

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
                    self._arrays = None  # rebuilt from the new table when next wanted
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

    def _hmm_words(self, s: str, out: list[str], tags=None) -> None:
        """``finalseg.__cut``: words from the B/M/E/S tags of a Han run (``tags``, or
        :meth:`_viterbi`'s)."""
        begin = nexti = 0
        for i, tag in enumerate(self._viterbi(s) if tags is None else tags):
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

    def _hmm(self, buf: str, out: list[str], parts: list[str] | None = None, tags=None) -> None:
        """``finalseg.cut``: Han runs through the HMM, the rest split on Latin/digit runs.
        ``parts`` is ``_RE_HMM_HAN.split(buf)`` when already made, and ``tags`` an iterator of
        the Han runs' tags when already found (:meth:`_viterbi_many`)."""
        force = finalseg.Force_Split_Words
        for k, part in enumerate(_RE_HMM_HAN.split(buf) if parts is None else parts):
            if k % 2:  # split() with a group: odd items are the Han runs
                run_tags = None if tags is None else next(tags)
                if force:
                    words: list[str] = []
                    self._hmm_words(part, words, run_tags)
                    for w in words:
                        if w in force:  # jieba.del_word: shown as single characters
                            out.extend(w)
                        else:
                            out.append(w)
                else:
                    self._hmm_words(part, out, run_tags)
            elif part:
                out.extend(x for x in _RE_HMM_SKIP.split(part) if x)

    def _viterbi_many(self, runs: list[str]) -> list[str]:
        """:meth:`_viterbi` of each run, as a string of tags, all runs at once in numpy: step t
        of every run at least t + 1 long together, with the same float sums and tie rules."""
        import numpy as np

        if not runs:
            return []
        if len(runs) < _MIN_BATCH_RUNS:  # too few to repay the fixed cost of the numpy steps
            return ["".join(self._viterbi(r)) for r in runs]
        if any(len(r) > _LONG_BLOCK for r in runs):  # one numpy step per character of the longest run
            short = iter(self._viterbi_many([r for r in runs if len(r) <= _LONG_BLOCK]))
            return ["".join(self._viterbi(r)) if len(r) > _LONG_BLOCK else next(short) for r in runs]
        lengths = np.fromiter(map(len, runs), dtype=np.int64, count=len(runs))
        codes = np.frombuffer("".join(runs).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        uniq, inv = np.unique(codes, return_inverse=True)
        chars = [chr(c) for c in uniq.tolist()]
        lo = _MIN_FLOAT
        emit = [np.fromiter((d.get(c, lo) for c in chars), dtype=np.float64, count=len(chars))[inv] for d in self._emit]
        eb_, em_, ee_, es_ = emit
        t_eb, t_sb, t_mm, t_bm, t_ss, t_es, t_be, t_me = self._trans
        order = np.argsort(-lengths, kind="stable")  # longest first: the runs alive at step t are a prefix
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]])[order]
        desc = lengths[order]
        alive = np.searchsorted(-desc, -np.arange(1, int(desc[0]) + 1), side="right")  # runs longer than t
        sb, sm, se, ss = self._start
        vb, vm, ve, vs = sb + eb_[first], sm + em_[first], se + ee_[first], ss + es_[first]
        back = np.zeros((len(codes), 4), dtype=np.uint8)  # previous state, per position and state B M E S
        B, M, E, S = 0, 1, 2, 3
        for t in range(1, len(alive)):
            m = alive[t]
            p = first[:m] + t
            eb, em, ee, es = eb_[p], em_[p], ee_[p], es_[p]
            b_, m_, e_, s_ = vb[:m], vm[:m], ve[:m], vs[:m]
            a, b = e_ + t_eb + eb, s_ + t_sb + eb
            keep = a > b  # max((score, state)): the higher score, on a tie the later letter
            nb, pb = np.where(keep, a, b), np.where(keep, E, S)
            a, b = m_ + t_mm + em, b_ + t_bm + em
            keep = b > a
            nm, pm = np.where(keep, b, a), np.where(keep, B, M)
            a, b = s_ + t_ss + es, e_ + t_es + es
            keep = b > a
            ns, ps = np.where(keep, b, a), np.where(keep, E, S)
            a, b = b_ + t_be + ee, m_ + t_me + ee
            keep = a > b
            ne, pe = np.where(keep, a, b), np.where(keep, B, M)
            back[p] = np.stack([pb, pm, pe, ps], axis=1)
            vb[:m], vm[:m], ve[:m], vs[:m] = nb, nm, ne, ns
        state = np.where(vs >= ve, S, E).astype(np.uint8)
        path = np.zeros(len(codes), dtype=np.uint8)
        for t in range(len(alive) - 1, -1, -1):
            m = alive[t]
            p = first[:m] + t
            path[p] = state[:m]
            if t:
                state[:m] = back[p, state[:m]]
        tags = np.frombuffer(b"BMES", dtype=np.uint8)[path].tobytes().decode("ascii")
        bounds = np.concatenate([[0], np.cumsum(lengths)]).tolist()
        return [tags[bounds[i] : bounds[i + 1]] for i in range(len(runs))]

    def _block(self, s: str, logp: dict, out: list, nxt: list[int] | None = None, off: int = 0, later: list | None = None) -> None:
        """``Tokenizer.__cut_DAG``: follow the route (``nxt[off:]``, or :meth:`_route`'s); runs
        of single characters that do not form a dictionary word go through the HMM (now, or,
        with ``later``, as a placeholder: see :meth:`_flush`)."""
        if nxt is None:
            nxt = self._route(s, logp)
        x, n, buf = 0, len(s), ""
        while x < n:
            y = nxt[off + x] + 1
            if y - x == 1:
                buf += s[x]
            else:
                if buf:
                    self._flush(buf, logp, out, later)
                    buf = ""
                out.append(s[x:y])
            x = y
        if buf:
            self._flush(buf, logp, out, later)

    def _flush(self, buf: str, logp: dict, out: list, later: list | None = None) -> None:
        """A run of single characters: itself, its characters, or the HMM's words; with
        ``later``, the HMM's place is held by its index into ``later``, where ``buf`` goes."""
        if len(buf) == 1:
            out.append(buf)
        elif not logp.get(buf):  # not a word (jieba: not FREQ.get(buf)); log-probs are < 0
            if later is None:
                self._hmm(buf, out)
            else:
                out.append(len(later))
                later.append(buf)
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
            else:
                _between(block, out)
        return out

    # -- many texts at once -------------------------------------------------------------------
    def lcut_many(self, texts) -> list[list[str]]:
        """``[self.lcut(t) for t in texts]``, with the dictionary route of all the texts'
        blocks (:class:`_RouteArrays`) and the HMM tags of all their unknown runs
        (:meth:`_viterbi_many`) computed at once in numpy; the same words."""
        logp = self._table()
        pieces = [_RE_BLOCK.split(t) if t else [] for t in texts]
        # the numpy solve takes one step per character of the longest block: a block longer
        # than _LONG_BLOCK (a letter without punctuation) takes the one-block route instead;
        # so does every block of a batch too small to repay the solve's fixed cost
        blocks = [b for ps in pieces for b in ps[1::2] if len(b) <= _LONG_BLOCK]
        arrays = self._route_arrays(logp) if sum(map(len, blocks)) >= _MIN_BATCH_CHARS else None
        route, starts = arrays.routes(blocks, logp, self._unknown) if arrays is not None else ([], [])
        out_all = []
        later: list[str] = []  # runs for the HMM, solved together below
        b = 0
        for ps in pieces:
            out: list = []
            for k, block in enumerate(ps):
                if k % 2:
                    if arrays is None or len(block) > _LONG_BLOCK:
                        self._block(block, logp, out, None, 0, later)
                    else:
                        self._block(block, logp, out, route, starts[b], later)
                        b += 1
                elif block:
                    _between(block, out)
            out_all.append(out)
        if not later:
            return out_all
        parts = [_RE_HMM_HAN.split(buf) for buf in later]
        tags = iter(self._viterbi_many([run for ps in parts for run in ps[1::2]]))
        hmm: list[list[str]] = []
        for buf, ps in zip(later, parts):
            words: list[str] = []
            self._hmm(buf, words, ps, tags)
            hmm.append(words)
        result = []
        for out in out_all:
            words = []
            for w in out:
                if type(w) is str:
                    words.append(w)
                else:
                    words.extend(hmm[w])
            result.append(words)
        return result

    def prepare(self) -> None:
        """Build the dictionary table and the batch route's numpy tables now, not at the first
        batch large enough to use them: a scorer calls this before forking its workers, so they
        share one copy instead of each building its own (0.3 s and about 40 MiB apiece)."""
        self._route_arrays(self._table())

    def _route_arrays(self, logp: dict) -> "_RouteArrays | None":
        """The numpy tables of ``logp`` (:meth:`_table`'s, just checked), built once."""
        if self._arrays is None:
            with self._lock:
                if self._arrays is None:
                    self._arrays = _RouteArrays.build(logp) or False
        return self._arrays or None


def _between(text: str, out: list) -> None:
    """What lies between blocks: whitespace runs kept whole, anything else one character each."""
    for j, piece in enumerate(_RE_SPACE.split(text)):
        if j % 2:
            out.append(piece)
        else:
            out.extend(piece)


_MISSING = object()
#: blocks longer than this (characters) are routed one by one, and HMM runs longer than this
#: tagged one by one (see Segmenter.lcut_many)
_LONG_BLOCK = 300
#: below this many characters of blocks in a batch, or this many HMM runs, the numpy steps' fixed
#: cost (about 0.5 ms and 0.15 ms) outweighs what they save: one by one instead (measured
#: break-even: about 2,000 characters, about 80 runs)
_MIN_BATCH_CHARS = 3000
_MIN_BATCH_RUNS = 80

#: dictionary words up to this length are looked up in numpy (four 16-bit character ids make
#: one exact 64-bit key); longer ones, where a 4-character prefix exists, the way jieba does
_KEY_CHARS = 4


class _RouteArrays:
    """jieba's maximum-probability route for many blocks at once.

    The dictionary (every entry of ``tk.FREQ`` up to four characters, words and the prefixes
    jieba keeps at frequency 0) becomes exact 64-bit keys in a hashed index, one per length, with
    ``log(freq) - log(total)``.  The blocks are joined with a separator no word contains, the
    words that start at each position are found with one lookup per length (longer words, where
    a four-character prefix exists, by extending in Python as jieba does), and the route is
    solved backwards by distance to the block's end: all positions at the same distance at
    once, each taking its best word by the same float sums and the same tie rule (the longer
    word) as :meth:`Segmenter._route`.
    """

    def __init__(self, char_id, keys, logps):
        self.char_id = char_id  # code point -> 1-based id (uint16), 0 for a character in no dictionary entry
        self.keys = keys  # per length 1..4: the entries' uint64 keys, as a hashed pandas Index
        self.logps = logps  # per length, in the keys' order: log-probability, nan for a prefix-only entry

    @classmethod
    def build(cls, logp: dict) -> "_RouteArrays | None":
        import numpy as np
        import pandas as pd

        words = list(logp)
        if not words:
            return None
        lengths = np.fromiter(map(len, words), dtype=np.int64, count=len(words))
        lp = pd.Series(list(logp.values()), dtype=np.float64).to_numpy()  # None (a prefix only) -> nan
        codes = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        alphabet = np.unique(codes)
        if len(alphabet) >= 1 << 16 or (len(alphabet) and alphabet[0] == 0):
            return None  # ids would not fit 16 bits, or an entry holds the blocks' separator U+0000: the plain route
        char_id = np.zeros(0x110000, dtype=np.uint16)
        char_id[alphabet] = np.arange(1, len(alphabet) + 1, dtype=np.uint16)
        ids = char_id[codes].astype(np.uint64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        keys, logps = [], []
        for n in range(1, _KEY_CHARS + 1):
            sel = np.flatnonzero(lengths == n)
            key = np.zeros(len(sel), dtype=np.uint64)
            for j in range(n):
                key = (key << np.uint64(16)) | ids[offsets[sel] + j]
            keys.append(pd.Index(key))  # distinct: the keys are exact
            logps.append(lp[sel])
        return cls(char_id, keys, logps)

    def routes(self, blocks: list[str], logp: dict, unknown: float) -> tuple[list[int], list[int]]:
        """:meth:`Segmenter._route` of every block, in one flat list, and where each block's
        route starts in it (``route[starts[b] + x]`` is block ``b``'s ``_route(...)[x]``)."""
        import numpy as np

        if not blocks:
            return [], []
        lengths = np.fromiter(map(len, blocks), dtype=np.int64, count=len(blocks))
        joined = "\x00".join(blocks) + "\x00"  # no dictionary entry holds U+0000
        codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = self.char_id[codes].astype(np.uint64)
        total = len(codes)
        starts = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])  # each block's first position
        is_char = np.ones(total, dtype=bool)
        is_char[starts + lengths] = False  # the separators
        # each position's words by length: lp_of[n - 1][p] is the log-probability of the word
        # s[p:p+n] (n <= 4), -inf when that is not a word
        lp_of = []
        key = np.zeros(total, dtype=np.uint64)
        pos = np.flatnonzero(is_char)  # positions whose prefix of length n-1 is an entry
        for n in range(1, _KEY_CHARS + 1):
            if n > 1:
                pos = pos[pos + n - 1 < total]
                key[pos] = (key[pos] << np.uint64(16)) | ids[pos + n - 1]
            else:
                key[pos] = ids[pos]
            at = self.keys[n - 1].get_indexer(key[pos])  # -1: not an entry
            found = at >= 0
            pos, at = pos[found], at[found]
            col = np.full(total, -np.inf)
            col[pos] = self.logps[n - 1][at]
            col[np.isnan(col)] = -np.inf  # nan: a prefix only
            lp_of.append(col)
        # longer words: extend as jieba does, from positions whose 4-character prefix exists
        long_pos, long_len, long_lp = [], [], []
        get = logp.get
        missing = _MISSING
        for p in pos.tolist():
            i = p + _KEY_CHARS
            while i < total:
                v = get(joined[p : i + 1], missing)
                if v is missing:
                    break
                if v is not None:
                    long_pos.append(p), long_len.append(i + 1 - p), long_lp.append(v)
                i += 1
        # a position with no word at all: one character at jieba's log(1) - log(total)
        bare = is_char.copy()
        for col in lp_of:
            bare &= np.isneginf(col)
        # longer words as further (lengths, log-probabilities) columns, by rank at their position
        # (its shortest longer word first): length 1 and -inf where a position has none
        long_cols = []
        if long_pos:
            lp_pos = np.asarray(long_pos, dtype=np.int64)
            bare[lp_pos] = False
            first = np.r_[0, np.flatnonzero(lp_pos[1:] != lp_pos[:-1]) + 1]
            rank = np.arange(len(lp_pos)) - np.repeat(first, np.diff(np.r_[first, len(lp_pos)]))
            long_len, long_lp = np.asarray(long_len, dtype=np.int64), np.asarray(long_lp, dtype=np.float64)
            for r in range(int(rank.max()) + 1):
                n_col, lp_col = np.ones(total, dtype=np.int64), np.full(total, -np.inf)
                n_col[lp_pos[rank == r]], lp_col[lp_pos[rank == r]] = long_len[rank == r], long_lp[rank == r]
                long_cols.append((n_col, lp_col))
        lp_of[0][bare] = unknown
        # solve backwards by distance d to the block's end: the blocks at least d long, longest
        # first, have their position at distance d at (end - d); a word's end is then solved.
        # Each length is tried from short to long, and a tie goes to the longer word.
        by_len = np.argsort(-lengths, kind="stable")
        ends = (starts + lengths)[by_len]
        desc = lengths[by_len]
        alive = np.searchsorted(-desc, -np.arange(1, int(desc[0]) + 1), side="right")  # blocks with length >= d
        score = np.zeros(total + _KEY_CHARS + 1, dtype=np.float64)  # a non-word may end past the last separator
        nxt = np.zeros(total, dtype=np.int64)
        for d in range(1, len(alive) + 1):
            p = ends[: alive[d - 1]] - d
            best = lp_of[0][p] + score[p + 1]
            take = np.ones(len(p), dtype=np.int64)
            for n in range(2, _KEY_CHARS + 1):
                v = lp_of[n - 1][p] + score[p + n]  # -inf where not a word
                longer = v >= best
                best = np.where(longer, v, best)
                take[longer] = n
            for n_col, lp_col in long_cols:
                n = n_col[p]
                v = lp_col[p] + score[p + n]
                longer = v >= best
                best = np.where(longer, v, best)
                take = np.where(longer, n, take)
            score[p] = best
            nxt[p] = p + take - 1
        return (nxt - np.repeat(starts, lengths + 1)).tolist(), starts.tolist()
