"""``redaction.Secrets``: a secret is blanked out whole, and so is any piece of it that a cut
left behind (``printable``'s, reprlib's, a plugin's own), while ordinary text, and the four
characters of a key's fingerprint, are left as they are."""

from __future__ import annotations

import json
import random
import string
import uuid
from pathlib import Path

import pytest

from wyoming_bodhi.redaction import FINGERPRINT_LENGTH, Secrets, fingerprint
from wyoming_bodhi.text import printable, quoted

KEY = "k3y-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
"""The review's key: 40 characters."""
ROOT = Path(__file__).parent.parent


def pieces(secret: str, text: str, at_least: int = FINGERPRINT_LENGTH) -> list[str]:
    """The pieces of ``secret`` (``at_least`` characters or more: shorter ones are chance)
    that ``text`` shows, less those within its last four, which the fingerprint shows on
    purpose."""
    shown = secret[-FINGERPRINT_LENGTH:]
    found = []
    for length in range(len(secret), at_least - 1, -1):
        for start in range(len(secret) - length + 1):
            piece = secret[start : start + length]
            if piece in text and piece not in shown and not any(piece in f for f in found):
                found.append(piece)
    return found


def around(offset: int, length: int = 600) -> str:
    """Filler with the key starting at ``offset``."""
    return "x" * offset + KEY + "z" * max(0, length - offset - len(KEY))


# Where each cut falls: printable(…, 500) keeps 499 characters; quoted(…, N) keeps the first
# (N - 3) // 2 - 1 characters and the last N - 3 - (N - 3) // 2 - 1.
CUTS = [
    pytest.param(lambda text: printable(text, 500), 499 - len(KEY) + 1, 499, id="printable-500"),
    pytest.param(lambda text: printable(text, 120), 119 - len(KEY) + 1, 119, id="printable-120"),
    pytest.param(lambda text: quoted(text, 120), 57 - len(KEY) + 1, 57, id="quoted-120-head"),
    pytest.param(lambda text: quoted(text, 80), 37 - len(KEY) + 1, 37, id="quoted-80-head"),
]


@pytest.mark.parametrize(("cut", "first", "last"), CUTS)
def test_a_prefix_a_cut_leaves_is_blanked(cut: object, first: int, last: int) -> None:
    """The key at every offset across the cut: whatever prefix the cut leaves is blanked."""
    secrets = Secrets([KEY])
    assert callable(cut)
    for offset in range(max(0, first), last):
        shown = cut(around(offset))
        assert KEY not in shown and KEY[: last - offset] in shown  # the cut left a prefix
        assert pieces(KEY, secrets.text(shown)) == [], (offset, shown)


@pytest.mark.parametrize("limit", [80, 120, 200])
def test_a_suffix_reprlib_s_middle_cut_leaves_is_blanked(limit: int) -> None:
    """reprlib keeps a text's head and tail: a key across the tail's start leaves a suffix,
    blanked but for the fingerprint's four characters."""
    secrets = Secrets([KEY])
    tail = limit - 3 - (limit - 3) // 2 - 1
    for kept in range(1, min(len(KEY), tail + 1)):
        text = "x" * 300 + KEY + "z" * (tail - kept)
        shown = quoted(text, limit)
        assert KEY[-kept:] in shown and "..." in shown
        blanked = secrets.text(shown)
        assert pieces(KEY, blanked) == [], (kept, shown, blanked)
        if kept <= FINGERPRINT_LENGTH:
            assert KEY[-kept:] in blanked  # what the fingerprint shows anyway


def test_a_long_run_of_a_secret_is_blanked_anywhere() -> None:
    """A cut that leaves no mark (a plugin's ``text[:80]``, a server's own) is still blanked
    once the piece is long enough not to be chance: eight characters, or half a short key."""
    secrets = Secrets([KEY])
    for start in range(len(KEY) - 8 + 1):
        for length in range(8, len(KEY) - start + 1):
            piece = KEY[start : start + length]
            said = f"the server said: {piece} and more"
            # Letters and digits are also matched run together: a last letter of the word
            # before that happens to continue the key may go with it ("sai…").
            assert secrets.text(said) in (
                "the server said: … and more",
                "the server sai… and more",
            ), piece
    short = "Zq81mXv4Tr0w"  # 12 characters: six is half of it
    assert Secrets([short]).text("its start Zq81mX, its end Tr0w") == "its start …, its end Tr0w"
    # A plugin cutting with no mark at all: nothing of eight or more survives.
    for end in range(1, len(KEY)):
        assert all(len(p) < 8 for p in pieces(KEY, secrets.text(("x" * 40 + KEY)[: 40 + end])))


def test_the_fingerprint_and_short_pieces_are_left_alone() -> None:
    secrets = Secrets([KEY])
    for text in (
        f"api key {fingerprint(KEY)}",  # …6789
        f"Bodhi (api key {fingerprint(KEY)}) at wss://bodhi.example",
        "k3y- is three characters and a dash",  # a prefix, but nowhere near a cut
        "ABCDEFG is seven letters",  # seven: could be chance
        "loading… done",
        "k… and k3y... (three characters or fewer before a cut: chance too)",
        "cut…789 shows no more than the fingerprint does",
    ):
        assert secrets.text(text) == text


def test_every_secret_and_its_escaped_forms() -> None:
    quoting = 'ke"y-with\\quotes-0f3a9c'
    secrets = Secrets([KEY, quoting, "abc", None, ""])
    assert secrets.values == (KEY, quoting)  # three characters is not worth it
    said = json.dumps({"error": f"bad {quoting}", "again": repr(quoting)})
    assert pieces(quoting, secrets.text(said)) == []
    assert secrets.text(f"{KEY} / {KEY}") == "… / …"


def test_bytes_are_blanked_as_text_and_kept_byte_for_byte_otherwise() -> None:
    secrets = Secrets([KEY])
    said = b"\xff\xfe not UTF-8, then " + KEY.encode() + b" \x00\xc3"
    assert secrets.data(said) == b"\xff\xfe not UTF-8, then \xe2\x80\xa6 \x00\xc3"
    assert secrets.data(b"\xff nothing of it") == b"\xff nothing of it"


def _random_key(rng: random.Random, length: int, alphabet: str) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def test_ordinary_text_is_left_alone() -> None:
    """Every line of the docs, the changelog and the package's source (thousands of lines
    of ordinary text, with ellipses, UUIDs, hex and cut-short examples), each with a
    fingerprint, goes through unchanged with real-looking secrets."""
    rng = random.Random(20240521)
    secrets = Secrets(
        [
            _random_key(rng, 40, string.ascii_letters + string.digits),
            _random_key(rng, 32, string.hexdigits.lower()),
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + _random_key(rng, 60, string.ascii_letters),
        ]
    )
    files = [*ROOT.glob("*.md"), *ROOT.glob("docs/*.md"), *ROOT.glob("wyoming_bodhi/**/*.py")]
    lines = [line for path in files for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) > 10_000
    for secret in secrets.values:
        lines.append(f"api key {fingerprint(secret)}")
    changed = [line for line in lines if secrets.text(line) != line]
    assert changed == []


def test_a_prefix_before_a_cut_mark_json_escaped_is_blanked() -> None:
    """The status page blanks its JSON once written, where ``…`` is ``\\u2026``."""
    secrets = Secrets([KEY])
    for kept in range(FINGERPRINT_LENGTH, 8):
        written = json.dumps({"text": "w" * 20 + " " + KEY[:kept] + "…"})
        blanked = secrets.text(written)
        assert pieces(KEY, blanked) == [], blanked
        assert json.loads(blanked)["text"] == "w" * 20 + " …", blanked


RANDOM_KEY = "Q7ZX9KJV3WQ8XZJ6KQV2abcd"
RANDOM_ID = "5521c0de-7a1b-4c2d-9e3f-0123456789ab"


@pytest.mark.parametrize(
    "said",
    [
        "invalid key Q7ZX-9KJV-3WQ8-XZJ6-KQV2-abcd",
        "key Q7Z\u200dX9K\u200dJV3\u200dWQ8\u200dXZJ\u200d6KQ\u200dV2a\u200dbcd",
        "<html>Q7ZX9K\x07JV3WQ8\x07XZJ6KQ\x07V2abcd</html>",
        "k=Q7ZX9KJ: V3WQ8XZ J6KQV2",
        "key Q7ZX9K************abcd revoked",
        "invalid key q7zx9kjv3wq8xzj6kqv2abcd",
        "customer 5521C0DE-7A1B-4C2D-9E3F-0123456789AB",
        "customer 5521c0de 7a1b 4c2d 9e3f 0123456789ab",
    ],
)
def test_a_secret_broken_up_or_in_another_case_is_still_blanked(said: str) -> None:
    # A server may quote a key in pieces (a joiner every few characters shows as nothing in
    # a terminal), or masked, or lower-cased: no piece of four characters or more is left,
    # other than the key's last four.
    shown = Secrets([RANDOM_KEY, RANDOM_ID]).text(said)
    view = "".join(char for char in shown if char.isalnum()).casefold()
    for secret in (RANDOM_KEY, RANDOM_ID.replace("-", "")):
        folded = secret.casefold()
        pieces = [folded[at : at + 4] for at in range(len(folded) - 4)]  # all but the last
        assert not [piece for piece in pieces if piece in view], shown
