"""Turn the published RouteLLM evaluations into policyroute TRAFFIC and OUTCOMES files.

    python examples/routellm/convert.py            # reads examples/routellm/data, writes next to it

The data (examples/routellm/data/, Apache-2.0, see data/SOURCE.md) holds answers of a weak
model (Mixtral-8x7B-Instruct) and a strong one (GPT-4-1106-preview) to three benchmarks. The
weak model plays a cheap tier and the strong one an expensive tier: by default ``haiku`` and
``opus``, the names the shipped policies and examples/routellm/two-tier.route use.

What comes out (deterministic: running it again gives the same bytes):

- ``mt-bench.traffic.jsonl``: 160 requests, one per turn of the 80 MT-Bench questions. Turn 2
  carries turn 1 as the earlier user message and the strong model's turn-1 answer as the
  assistant message between them. Both turns of a question share
  ``route.metadata.question`` (``--group-by question``).
- ``mt-bench.outcomes.jsonl``: the GPT-4 judge's 1-10 score of each model's answer to each
  turn, with ``answer_chars`` (the answer's length, from the judge's transcript).
- ``gsm8k.traffic.jsonl`` and ``gsm8k.outcomes.jsonl``: 1,319 math problems; score 1 when the
  model's final answer was right, 0 when not; ``answer_chars`` from the models' responses.
- ``mmlu.traffic.jsonl.gz`` and ``mmlu.outcomes.csv.gz``: 14,042 multiple-choice questions in
  57 subjects; the CSV holds True/False per tier. RouteLLM generated one token per answer
  (the letter), so these requests carry ``max_tokens: 1``.

Prompts RouteLLM drops as overlapping its router's training data are kept, marked with
``route.metadata.routellm_contaminated = true``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG = "gpt-4-1106-preview"
# The Messages API needs max_tokens; the data does not record the original cap, so a
# generous one is set for the free-text benchmarks (answers there are well under it).
FREE_TEXT_MAX_TOKENS = 2048


def _jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _contaminated(data: Path, name: str) -> set[str]:
    return {row["eval_prompt"] for row in _jsonl(data / f"{name}_contaminated_prompts.jsonl")}


def _dump(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def _write(path: Path, lines: Iterable[str]) -> int:
    text = "".join(lines)
    if path.suffix == ".gz":
        # mtime=0 and no file name in the header: the same input gives the same bytes.
        buf = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz:
            gz.write(text.encode("utf-8"))
        path.write_bytes(buf.getvalue())
    else:
        path.write_text(text, encoding="utf-8")
    return text.count("\n")


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start) + len(start)
    return text[i : text.index(end, i)]


def _answers(judgement: dict[str, Any]) -> tuple[str | None, str]:
    """(turn-1 answer or None, this turn's answer) from the judge's transcript."""
    prompt = judgement["user_prompt"]
    if judgement["turn"] == 1:
        return None, _between(
            prompt, "[The Start of Assistant's Answer]\n", "\n[The End of Assistant's Answer]"
        )
    convo = prompt[prompt.index("<|The Start of Assistant A's Conversation with User|>") :]
    first = _between(convo, "### Assistant A:\n", "\n\n### User:\n")
    last = convo[convo.rindex("### Assistant A:\n") + len("### Assistant A:\n") :]
    last = last[: last.rindex("\n\n<|The End of Assistant A's Conversation with User|>")]
    return first, last


def _meta(benchmark: str, contaminated: bool, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"benchmark": benchmark, **extra}
    if contaminated:
        meta["routellm_contaminated"] = True
    return meta


def mt_bench(data: Path, out: Path, tiers: dict[str, str]) -> tuple[int, int]:
    questions = _jsonl(data / "mt_bench_questions.jsonl")
    dirty = _contaminated(data, "mt_bench")
    judgements = {
        (j["question_id"], j["model"], j["turn"]): j
        for j in _jsonl(data / "mt_bench_judgements.jsonl")
    }
    traffic: list[str] = []
    outcomes: list[str] = []
    for q in sorted(questions, key=lambda q: q["question_id"]):
        qid = q["question_id"]
        t1, t2 = q["turns"]
        group = f"mt-bench/{qid}"
        contaminated = t1 in dirty or t2 in dirty
        strong_first, _ = _answers(judgements[(qid, STRONG, 2)])
        for turn, messages in (
            (1, [{"role": "user", "content": t1}]),
            (
                2,
                [
                    {"role": "user", "content": t1},
                    {"role": "assistant", "content": strong_first},
                    {"role": "user", "content": t2},
                ],
            ),
        ):
            rid = f"{group}/{turn}"
            meta = _meta(
                "mt-bench", contaminated, category=q["category"], question=group, turn=turn
            )
            traffic.append(
                _dump(
                    {
                        "id": rid,
                        "max_tokens": FREE_TEXT_MAX_TOKENS,
                        "messages": messages,
                        "route": {"metadata": meta},
                    }
                )
            )
            for model in (WEAK, STRONG):
                j = judgements[(qid, model, turn)]
                _, answer = _answers(j)
                outcomes.append(
                    _dump(
                        {
                            "id": rid,
                            "tier": tiers[model],
                            "score": j["score"],
                            "answer_chars": len(answer),
                            "answered_by": model,
                            "judge": "gpt-4",
                        }
                    )
                )
    return (
        _write(out / "mt-bench.traffic.jsonl", traffic),
        _write(out / "mt-bench.outcomes.jsonl", outcomes),
    )


def _truth(cell: str) -> bool:
    if cell not in ("True", "False"):
        raise ValueError(f"expected True or False, got {cell!r}")
    return cell == "True"


def gsm8k(data: Path, out: Path, tiers: dict[str, str]) -> tuple[int, int]:
    dirty = _contaminated(data, "gsm8k")
    traffic: list[str] = []
    outcomes: list[str] = []
    with (data / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            rid = f"gsm8k/{i}"
            traffic.append(
                _dump(
                    {
                        "id": rid,
                        "max_tokens": FREE_TEXT_MAX_TOKENS,
                        "messages": [{"role": "user", "content": row["prompt"]}],
                        "route": {"metadata": _meta("gsm8k", row["prompt"] in dirty)},
                    }
                )
            )
            for model in (WEAK, STRONG):
                outcomes.append(
                    _dump(
                        {
                            "id": rid,
                            "tier": tiers[model],
                            "score": 1 if _truth(row[model]) else 0,
                            "answer_chars": len(row[f"{model}_response"]),
                            "answered_by": model,
                        }
                    )
                )
    return (
        _write(out / "gsm8k.traffic.jsonl", traffic),
        _write(out / "gsm8k.outcomes.jsonl", outcomes),
    )


def mmlu(data: Path, out: Path, tiers: dict[str, str]) -> tuple[int, int]:
    dirty = _contaminated(data, "mmlu")
    traffic: list[str] = []
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow(["id", tiers[WEAK], tiers[STRONG]])
    for path in sorted((data / "mmlu").glob("mmlu_*.csv")):
        subject = path.stem.removeprefix("mmlu_")
        with path.open(encoding="utf-8", newline="") as f:
            for i, row in enumerate(csv.DictReader(f)):
                rid = f"mmlu/{subject}/{i}"
                traffic.append(
                    _dump(
                        {
                            "id": rid,
                            "max_tokens": 1,
                            "messages": [{"role": "user", "content": row["prompt"]}],
                            "route": {
                                "metadata": _meta("mmlu", row["prompt"] in dirty, subject=subject)
                            },
                        }
                    )
                )
                writer.writerow([rid, _truth(row[WEAK]), _truth(row[STRONG])])
    n = _write(out / "mmlu.traffic.jsonl.gz", traffic)
    _write(out / "mmlu.outcomes.csv.gz", [rows.getvalue()])
    return n, (rows.getvalue().count("\n") - 1) * 2


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=HERE / "data", help="the RouteLLM files")
    p.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    p.add_argument("--weak-tier", default="haiku", help="tier the weak model plays (haiku)")
    p.add_argument("--strong-tier", default="opus", help="tier the strong model plays (opus)")
    args = p.parse_args(argv)
    if args.weak_tier == args.strong_tier:
        p.error("--weak-tier and --strong-tier must differ")
    tiers = {WEAK: args.weak_tier, STRONG: args.strong_tier}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, convert in (("mt-bench", mt_bench), ("gsm8k", gsm8k), ("mmlu", mmlu)):
        requests, outcomes = convert(args.data, args.out, tiers)
        print(f"{name}: {requests} requests, {outcomes} outcomes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
