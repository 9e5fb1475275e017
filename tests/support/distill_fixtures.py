"""Tiny vocabulary, corpus and task files shared by the distillation and training tests."""

from pathlib import Path

WORDS = ["the", "a", "movie", "film", "was", "is", "good", "great", "fun", "bad", "awful", "dull", "plot", "actors",
         "and", "but", "very", "not", "really", "story"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_vocab(directory: Path) -> Path:
    """A WordPiece vocab that fits the test presets' 128-entry embedding table."""
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = SPECIALS + WORDS + letters + [f"##{c}" for c in letters] + [".", ","]
    assert len(vocab) <= 128
    path = Path(directory) / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n")
    return path


def tiny_corpus(directory: Path, lines: int = 64) -> Path:
    import random

    rng = random.Random(0)
    path = Path(directory) / "corpus.txt"
    path.write_text("\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(lines)))
    return path


def tiny_task(directory: Path, n: int = 400) -> Path:
    """Sentiment by keyword: a task a tiny model can learn in a few dozen steps."""
    import random

    rng = random.Random(1)
    pos, neg, filler = ["good", "great", "fun"], ["bad", "awful", "dull"], ["the", "movie", "was", "plot", "story", "a"]
    rows = []
    for i in range(n):
        label = i % 2
        words = [rng.choice(filler) for _ in range(rng.randint(3, 7))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(pos if label else neg))
        rows.append(f"{' '.join(words)} {i},{label}")  # the index keeps texts unique
    path = Path(directory) / "toy.csv"
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path
