"""Issue 14, items 8 and 11 (small ones): texts are cut to a bound before tokenizing; the webhook
token goes only over https and only from a DLW_ variable; every HTML page carries a
Content-Security-Policy that forbids scripts and remote content."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

CSP = (
    '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
    "img-src data:; style-src 'unsafe-inline'\">"
)

# ---- texts are cut before tokenizing ---------------------------------------------------------

PROSE = (
    "The committee met on Tuesday to review the quarterly figures, which showed a modest "
    "rise in revenue and a sharper fall in costs. Several members asked whether the trend "
    "would hold; the chair, unconvinced, proposed waiting for another quarter. "
)


class _Recording:
    """The real tokenizer, recording the length of every text it is given."""

    def __init__(self, real) -> None:
        self.real = real
        self.lengths: list[int] = []

    def encode_batch(self, texts):
        self.lengths += [len(t) for t in texts]
        return self.real.encode_batch(texts)


def _reference(texts: list[str], max_len: int):
    """Token ids of the uncut texts, truncated as `tokenize` documents it."""
    import numpy as np

    from dlworkflow.preprocess.text import _tokenizer, tokenizer_file

    encodings = _tokenizer(str(tokenizer_file())).encode_batch(texts)
    length = min(max(len(e.ids) for e in encodings), max_len)
    out = np.zeros((len(texts), length), dtype=np.int64)
    for i, e in enumerate(encodings):
        ids = e.ids if len(e.ids) <= length else [*e.ids[: length - 1], e.ids[-1]]
        out[i, : len(ids)] = ids
    return out


def test_a_5_mb_text_is_cut_before_the_tokenizer_sees_it(monkeypatch):
    from dlworkflow.preprocess import text as module

    real = module._tokenizer(str(module.tokenizer_file()))
    recording = _Recording(real)
    monkeypatch.setattr(module, "_tokenizer", lambda path: recording)
    huge = (PROSE * (5_000_000 // len(PROSE) + 1))[:5_000_000]
    started = time.perf_counter()
    ids = module.tokenize([huge, "a short one"], 128)
    seconds = time.perf_counter() - started
    assert max(recording.lengths) <= 128 * 64, recording.lengths  # not 5,000,000 characters
    assert seconds < 2.0
    # the same ids as its first characters (the tokenizer keeps 128 tokens of either)
    assert (ids == module.tokenize([huge[:5000], "a short one"], 128)).all()
    assert (ids == _reference([huge[:20000], "a short one"], 128)).all()
    assert ids.shape == (2, 128)


@pytest.mark.parametrize("max_len", [2, 16, 128, 512])
def test_cutting_changes_nothing_for_normal_texts(max_len):
    from dlworkflow.preprocess.text import tokenize

    texts = [
        "",
        "dull",
        "A fine film!",
        PROSE,
        PROSE * 40,  # about 9,000 characters: longer than any bound of 128 tokens
        "naïve café — résumé, 東京 and emoji 🙂 " * 30,
        "word " * 3000,
    ]
    assert (tokenize(texts, max_len) == _reference(texts, max_len)).all()


def test_the_text_embedder_cuts_texts_too():
    from dlworkflow.models.text_encoder import MAX_TOKENS, TextEmbedder
    from dlworkflow.preprocess.text import tokenizer_file

    tokenizers = pytest.importorskip("tokenizers")
    torch = pytest.importorskip("torch")
    real = tokenizers.Tokenizer.from_file(str(tokenizer_file()))
    real.enable_truncation(max_length=MAX_TOKENS)
    real.enable_padding(pad_id=0, pad_token="[PAD]")
    recording = _Recording(real)
    embedder = TextEmbedder("minilm", recording, torch.nn.Identity())
    huge = PROSE * 20_000  # about 4.6 MB
    ids, mask = embedder.tokenize([huge, "short"])
    assert max(recording.lengths) <= MAX_TOKENS * 64
    full = real.encode_batch([huge[:40_000], "short"])
    assert ids.tolist() == [e.ids for e in full]
    assert mask.tolist() == [e.attention_mask for e in full]


# ---- the webhook token ------------------------------------------------------------------------


def test_the_token_is_not_sent_over_plain_http(monkeypatch):
    from dlworkflow.monitor import webhook

    opened: list[str] = []

    class Opener:
        def open(self, request, timeout):  # noqa: A003 - urllib's name
            opened.append(request.full_url)
            raise OSError("no network in tests")

    monkeypatch.setattr(urllib.request, "build_opener", lambda *a: Opener())
    monkeypatch.setenv("DLW_HOOK_TOKEN", "s3cret-token-value")
    delivery = webhook.post_alert(
        "http://alerts.example.com/hook/abc", {"event": "x"}, token_env="DLW_HOOK_TOKEN"
    )
    assert opened == []  # refused before any connection: neither token nor alert left
    assert not delivery.ok
    assert "https" in delivery.error and "DLW_HOOK_TOKEN" in delivery.error
    assert "s3cret" not in delivery.describe() and "abc" not in delivery.describe()
    # over https the same alert goes out (here: to the stub opener), with the token
    webhook.post_alert(
        "https://alerts.example.com/hook/abc", {"event": "x"}, token_env="DLW_HOOK_TOKEN"
    )
    assert opened == ["https://alerts.example.com/hook/abc"]


def test_config_refuses_a_token_variable_outside_dlw():
    from dlworkflow.config import validate_config
    from dlworkflow.errors import ConfigError

    base = {"name": "p", "task": "image-classification"}
    with pytest.raises(ConfigError) as info:
        validate_config({**base, "monitor": {"webhook_token_env": "HOME"}})
    assert "webhook_token_env" in str(info.value) + str(info.value.received or "")
    ok = validate_config({**base, "monitor": {"webhook_token_env": "DLW_HOOK_TOKEN"}})
    assert ok.monitor.webhook_token_env == "DLW_HOOK_TOKEN"


# ---- Content-Security-Policy ------------------------------------------------------------------


def _head(page: str) -> str:
    return page[page.index("<head>") : page.index("</head>")]


def _check(page: str) -> None:
    assert CSP in _head(page)
    assert not re.search(r"<script|javascript:|\son[a-z]+=", page, re.IGNORECASE)


def test_the_report_page_has_the_csp():
    from dlworkflow.report.html import Section, page

    _check(page("Report", "sub", [Section("summary", "Summary", "<p>ok</p>")]))


def test_the_explore_page_has_the_csp():
    from dlworkflow.explore.render import page

    _check(page("Data exploration", "sub", ["<section><h2>x</h2></section>"]))


def test_the_monitor_page_has_the_csp():
    from dlworkflow.monitor.html import render
    from dlworkflow.monitor.step import MonitorResult

    result = MonitorResult(
        status="NOT ENOUGH DATA",
        version=1,
        source="prediction log",
        n_live=3,
        n_reference=100,
        alpha=0.01,
        m=0,
        level=0.01,
        checks=[],
        report=None,
        json_path=None,
        window=(None, None),
        project_name="digits",
    )
    _check(render(result, []))
