"""meshlm._quiet.hf_progress_off: transformers' own progress bars are off inside meshlm's
one-time builds and as they were after; MESHLM_DEBUG=1 leaves them on."""

from __future__ import annotations

import pytest

from meshlm._quiet import hf_progress_off

hf_logging = pytest.importorskip("transformers.utils.logging")


@pytest.fixture
def bars_on():
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    yield
    (hf_logging.enable_progress_bar if was else hf_logging.disable_progress_bar)()


def test_bars_are_off_inside_and_back_on_after(bars_on, monkeypatch):
    monkeypatch.delenv("MESHLM_DEBUG", raising=False)
    with hf_progress_off():
        assert not hf_logging.is_progress_bar_enabled()
    assert hf_logging.is_progress_bar_enabled()


def test_bars_come_back_after_an_error(bars_on, monkeypatch):
    monkeypatch.delenv("MESHLM_DEBUG", raising=False)
    with pytest.raises(RuntimeError, match="boom"), hf_progress_off():
        raise RuntimeError("boom")
    assert hf_logging.is_progress_bar_enabled()


def test_debug_mode_and_bars_already_off_are_left_alone(bars_on, monkeypatch):
    monkeypatch.setenv("MESHLM_DEBUG", "1")
    with hf_progress_off():
        assert hf_logging.is_progress_bar_enabled()
    monkeypatch.delenv("MESHLM_DEBUG")
    hf_logging.disable_progress_bar()
    with hf_progress_off():
        assert not hf_logging.is_progress_bar_enabled()
    assert not hf_logging.is_progress_bar_enabled()  # not switched on by meshlm


def test_gguf_loader_bar_is_silenced_inside_and_restored(bars_on, monkeypatch):
    # transformers' GGUF loader calls tqdm directly, past its own progress-bar switch
    gguf_utils = pytest.importorskip("transformers.modeling_gguf_pytorch_utils")
    monkeypatch.delenv("MESHLM_DEBUG", raising=False)
    original = gguf_utils.tqdm
    with hf_progress_off():
        bar = gguf_utils.tqdm(range(3), desc="x")
        assert bar.disable and list(bar) == [0, 1, 2]
    assert gguf_utils.tqdm is original
    monkeypatch.setenv("MESHLM_DEBUG", "1")
    with hf_progress_off():
        assert gguf_utils.tqdm is original
