"""Is the language kept? LLaMA-Mesh's Table 3 in miniature, runnable on a CPU.

Three measures of a chat model before and after mesh fine-tuning (arXiv 2411.09595, Table 3
compares MMLU/PIQA/HellaSwag/GSM8K of the base and the fine-tune; those need a GPU, see
``meshlm eval language``):

(a) :func:`reply_perplexity` -- perplexity of the *base's own* replies to held-out open prompts
    (the text the base would write), under a model: how far fine-tuning moved it off its style.
(b) :func:`grade_facts` -- held-out factual and instruction questions, graded by a
    case-insensitive "contains" match (whole words for answers of 1-3 characters, so "A" or "7"
    is not found inside any reply).
(c) :func:`open_replies` -- verbatim replies to a few open prompts, for the model card.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from meshlm._quiet import hf_progress_off
from meshlm.errors import MeshlmError, require
from meshlm.infer.types import Sampling


def answer_found(reply: str, answers: list[str]) -> bool:
    """True when any of ``answers`` occurs in ``reply`` (case-insensitive; answers of at most 3
    characters must stand as a whole word)."""
    low = reply.lower()
    for a in answers:
        a = a.strip().lower()
        if not a:
            continue
        if len(a) <= 3:
            if re.search(r"(?<![a-z0-9])" + re.escape(a) + r"(?![a-z0-9])", low):
                return True
        elif a in low:
            return True
    return False


def grade_facts(engine, facts: list[dict], max_new_tokens: int = 64) -> dict:
    """Ask each ``{"question", "answers"}`` (greedy, no mesh constraint) and grade it with
    :func:`answer_found`. Returns ``{"accuracy", "n", "rows"}``."""

    rows = []
    for i, item in enumerate(facts):
        q, answers = item.get("question"), item.get("answers")
        if not isinstance(q, str) or not isinstance(answers, list):
            raise MeshlmError(f"facts row {i + 1}: needs 'question' and a list 'answers'")
        reply = engine.chat(
            [{"role": "user", "content": q}],
            Sampling(temperature=0.0, max_new_tokens=max_new_tokens),
        ).text
        rows.append({"question": q, "reply": reply, "ok": answer_found(reply, answers)})
    n = len(rows)
    return {"accuracy": sum(r["ok"] for r in rows) / n if n else 0.0, "n": n, "rows": rows}


def open_replies(engine, prompts: list[str], max_new_tokens: int = 200) -> list[str]:
    """Greedy replies (no mesh constraint) to ``prompts``, verbatim."""

    return [
        engine.chat(
            [{"role": "user", "content": p}],
            Sampling(temperature=0.0, max_new_tokens=max_new_tokens),
        ).text.strip()
        for p in prompts
    ]


def reply_pairs(path: str | Path) -> list[tuple[str, str]]:
    """``(prompt, reply)`` pairs from a JSONL file of chats (``messages``: a user turn, then an
    assistant turn; :mod:`meshlm.data.distill` writes them) or of ``prompt``/``reply`` rows (the
    ``open.jsonl`` that :func:`open_replies`' caller writes). Blank lines are skipped. Raises
    MeshlmError naming the file and line of a row that is neither."""
    pairs = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        pair = None
        if isinstance(row, dict) and isinstance(row.get("messages"), list):
            turns = [m for m in row["messages"] if isinstance(m, dict)]
            roles = [m.get("role") for m in turns[:2]]
            if roles == ["user", "assistant"]:
                pair = (turns[0].get("content"), turns[1].get("content"))
        elif isinstance(row, dict):
            pair = (row.get("prompt"), row.get("reply"))
        if not pair or not all(isinstance(x, str) and x.strip() for x in pair):
            raise MeshlmError(
                f"{path}:{n}: needs 'messages' (user, then assistant) or 'prompt' and 'reply'"
            )
        pairs.append(pair)
    return pairs


def reply_perplexity(
    model_dir: str | Path, pairs: list[tuple[str, str]], threads: int | None = None
) -> float:
    """Perplexity of the assistant replies in ``pairs`` ``(prompt, reply)`` under the
    transformers model at ``model_dir``: exp of the mean negative log-likelihood per reply token
    (the end-of-turn token included), each reply conditioned on its prompt through the model's
    chat template. Lower is closer to the text."""
    torch = require("torch", "train", "perplexity")
    transformers = require("transformers", "train", "perplexity")
    if threads:
        torch.set_num_threads(threads)
    with hf_progress_off():  # transformers' loading bar is not the user's business
        tok = transformers.AutoTokenizer.from_pretrained(str(model_dir))
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(model_dir), dtype=torch.float32
        ).eval()
    nll, count = 0.0, 0
    for prompt, reply in pairs:
        user = [{"role": "user", "content": prompt}]
        head = _ids(tok.apply_chat_template(user, add_generation_prompt=True, tokenize=True))
        full = _ids(
            tok.apply_chat_template([*user, {"role": "assistant", "content": reply}], tokenize=True)
        )
        if full[: len(head)] != head:
            raise MeshlmError(f"{model_dir}: the chat template does not extend the prompt")
        labels = [-100] * len(head) + full[len(head) :]
        with torch.no_grad():
            out = model(input_ids=torch.tensor([full]), labels=torch.tensor([labels]))
        n = sum(1 for x in labels[1:] if x != -100)
        nll += float(out.loss) * n
        count += n
    return math.exp(nll / count) if count else float("nan")


def _ids(x) -> list[int]:
    if hasattr(x, "keys") and "input_ids" in x:
        x = x["input_ids"]
    return list(x)
