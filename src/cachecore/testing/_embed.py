"""The default L2 embedding: hashed character n-grams, no model download.

A real gateway embeds prompts with a language model; tests and offline demos need
something deterministic, instant and dependency-free that still scores
paraphrases with small edits ("What is X?" vs "what's X ?") close together and
unrelated prompts far apart. Any ``Callable[[str], Sequence[float]]`` returning
vectors of a fixed size can replace it (``GatewayConfig.embedder``).
"""

from __future__ import annotations

import math
import re
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence

#: N-grams counted between two yields of the GIL (see ``NgramEmbedder``).
_GRAMS_PER_SLICE = 2048

#: What the gateway needs from an embedder: text in, fixed-size vector out.
Embedder = Callable[[str], Sequence[float]]

_NOISE = re.compile(r"[^\w]+")


class NgramEmbedder:
    """Hash character n-grams of normalised text into a unit vector of ``dim`` floats.

    Text is lower-cased and punctuation collapsed to spaces first, so casing and
    punctuation changes barely move the vector. ``zlib.crc32`` rather than
    ``hash()`` keeps vectors identical across processes (``PYTHONHASHSEED``).
    """

    def __init__(self, dim: int = 256, n: int = 3) -> None:
        if dim < 8 or n < 1:
            raise ValueError("NgramEmbedder needs dim >= 8 and n >= 1")
        self.dim = dim
        self.n = n

    def __call__(self, text: str) -> list[float]:
        norm = " " + _NOISE.sub(" ", text.lower()).strip() + " "
        vec = [0.0] * self.dim
        n, dim = self.n, self.dim
        grams = max(1, len(norm) - n + 1)
        for start in range(0, grams, _GRAMS_PER_SLICE):
            if start:
                # A long prompt is embedded in a worker thread: let the event loop's
                # thread take the GIL between slices, so hits answer meanwhile.
                time.sleep(0)
            piece = norm[start : start + _GRAMS_PER_SLICE + n - 1]
            # zip of shifted copies: the n-grams are sliced and counted in C
            counts = Counter(map("".join, zip(*(piece[k:] for k in range(n))))) or {piece: 1}
            for gram, count in counts.items():
                h = zlib.crc32(gram.encode("utf-8"))
                # the top bit picks a sign: collisions then cancel out instead of piling up
                vec[h % dim] += count if h & 0x80000000 else -count
        length = math.sqrt(sum(x * x for x in vec))
        return [x / length for x in vec] if length else vec
