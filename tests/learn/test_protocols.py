"""`policyroute learn`'s protocols: conjunctions, conversation-level routing, cross-fitting,
budgets the data cannot tell apart, `--exclude`, and the curve's figures."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from policyroute.learn.data import load_examples
from policyroute.learn.learner import Settings
from policyroute.learn.run import learn
from policyroute.learn.tiers import read_tiers

from .synth import FILLER, TIERS, Synth, write


def tiers_text() -> str:
    return TIERS


def test_a_gain_where_two_conditions_meet_is_a_conjunction(tmp_path: Path) -> None:
    """The strong tier gains only on math questions' second turns: neither condition alone
    says it, and learn writes `... and turns > 1` (a branch of a shallow tree)."""
    import random

    rng = random.Random(4)
    lines, scores = [], []
    for g in range(160):
        kind = rng.choice(["math", "chat", "code", "poem"])
        for turn in (1, 2):
            rid = f"q{g}/{turn}"
            messages = [{"role": "user", "content": "Please " + " ".join(rng.sample(FILLER, 5))}]
            if turn == 2:
                messages += [{"role": "assistant", "content": "ok"}, messages[0]]
            meta = {"category": kind, "question": f"q{g}"}
            lines.append({"id": rid, "messages": messages, "route": {"metadata": meta}})
            base = rng.uniform(4, 7)
            gain = 3.0 if kind == "math" and turn == 2 else 0.0
            scores.append({"id": rid, "tier": "haiku", "score": base + rng.gauss(0, 0.5)})
            scores.append({"id": rid, "tier": "opus", "score": base + gain + rng.gauss(0, 0.5)})
    traffic, outcomes = tmp_path / "t.jsonl", tmp_path / "o.jsonl"
    traffic.write_text("".join(json.dumps(x) + "\n" for x in lines))
    outcomes.write_text("".join(json.dumps(x) + "\n" for x in scores))
    (tmp_path / "tiers.route").write_text(tiers_text())
    tiers = read_tiers(tmp_path / "tiers.route")
    loaded = load_examples(
        [str(traffic)], [str(outcomes)], tiers.tiers, "haiku", "opus", "question"
    )
    s = Settings("haiku", "opus", 0.2, holdout=0.3, group_by="question")
    result = learn(
        loaded, tiers, s, tmp_path / "l.route", traffic=[str(traffic)], outcomes=[str(outcomes)]
    )
    first = result.rules[0].condition
    assert 'metadata.category == "math"' in first and "turns > " in first, first
    assert result.curve is not None and result.curve.apgr is not None
    assert result.curve.apgr[1] > 0.5  # on held-out questions, well above random routing


def test_conversation_mode_decides_on_the_first_turn(tmp_path: Path) -> None:
    """--conversation: rules read first turns only and the conversation keeps their tier
    (sticky); the held-out figures count every turn of a conversation sent strong."""
    traffic, outcomes, tiers_path = write(tmp_path, planted="quantum", n_groups=200)
    tiers = read_tiers(tiers_path)
    loaded = load_examples(
        [str(traffic)], [str(outcomes)], tiers.tiers, "haiku", "opus", "conversation"
    )
    s = Settings("haiku", "opus", 0.3, group_by="conversation", conversation=True)
    result = learn(
        loaded, tiers, s, tmp_path / "l.route", traffic=[str(traffic)], outcomes=[str(outcomes)]
    )
    assert result.rules and all(
        line.startswith("rule ") and ": turns == 1 and " in line
        for line in result.text.splitlines()
        if line.startswith("rule ")
    )
    assert "sticky conversations" in result.text
    assert result.heldout is None and result.curve is not None
    # Two turns per conversation: every strong decision is two strong calls.
    assert "conversations in" in result.text and "decided on its first turn" in result.text


def test_cross_fit_reports_both_directions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    out = tmp_path / "learned.route"
    flags = ["--budget", "30", "--group-by", "conversation", "--holdout", "50", "--cross-fit"]
    assert synth().learn(*flags) == 0
    printed = capsys.readouterr().out
    assert "cross-fitted (learned on the held-out part" in printed
    header = out.read_text().split('\npolicy "')[0]
    assert header.count("APGR") == 2 and "Cross-fitted" in header
    assert "random routing needs" in header


def test_budgets_that_the_data_cannot_tell_apart_are_said_to_be_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    assert synth(share=0.1).learn("--budgets", "20,30,50", "--group-by", "conversation") == 0
    printed = capsys.readouterr().out
    assert "distinct)" in printed
    texts = [(tmp_path / f"learned-{b}.route").read_text() for b in (20, 30, 50)]
    rules = [[line for line in t.splitlines() if line.startswith("rule ")] for t in texts]
    distinct = len({tuple(r) for r in rules})
    assert f"the curve of 3 policies ({distinct} distinct)" in printed
    for b, earlier in ((30, rules[0]), (50, rules[1])):
        if rules[[20, 30, 50].index(b)] == earlier:
            assert f"(budget {b}%); the same rules as at" in printed


def test_exclude_keeps_an_attribute_out_of_every_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    data = synth()
    out = tmp_path / "learned.route"
    assert data.learn("--budget", "30", "--exclude", "prompt,text") == 0
    body = out.read_text().split("policy ")[1]
    assert "contains" not in body.split("\ntest ")[0]
    assert "Not used as conditions: prompt, text" in out.read_text()
    assert data.learn("--budget", "30", "--exclude", "nonsense") == 2
    assert "not an attribute" in capsys.readouterr().err


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 3),  # rule index, 3 = the default
            st.integers(0, 10).map(lambda x: x / 10),  # cheap score
            st.integers(0, 10).map(lambda x: x / 10),  # strong score
        ),
        min_size=2,
        max_size=30,
    ),
)
def test_curve_figures_are_the_trapezoid_of_the_prefix_curve(
    data: list[tuple[int, float, float]],
) -> None:
    """APGR and the 95% share, recomputed here point by point from the rule prefixes."""
    from policyroute.learn.figures import Unit, measure

    units = [Unit(f"g{i}", r if r < 3 else None, 1.0, c, s) for i, (r, c, s) in enumerate(data)]
    curve = measure(units, 3, seed=0, bootstrap=20)
    n = len(data)
    cheap = sum(c for _, c, _ in data) / n
    strong = sum(s for _, _, s in data) / n
    points = [(0.0, cheap)]
    for k in range(1, 4):
        taken = [(c, s) for r, c, s in data if r < k]
        share = len(taken) / n
        score = (sum(s for _, s in taken) + sum(c for r, c, _ in data if r >= k)) / n
        points.append((share, score))
    points.append((1.0, strong))
    assert curve.share == pytest.approx(points[3][0])
    assert curve.score == pytest.approx(points[3][1])
    assert curve.random_score == pytest.approx(cheap + points[3][0] * (strong - cheap))
    if strong - cheap <= 1e-9:
        assert curve.apgr is None
        return
    area = sum(
        (x1 - x0) * ((y0 + y1) / 2 - cheap) for (x0, y0), (x1, y1) in itertools.pairwise(points)
    )
    assert curve.apgr is not None and curve.apgr[0] == pytest.approx(area / (strong - cheap))
    goal = 0.95 * strong
    # The least share at which the curve reaches the goal: 0 when all-cheap already does.
    if cheap >= goal - 1e-12:
        reach = 0.0
    else:  # the first segment that reaches the goal rises into it, so y1 > y0 there
        reach = next(
            (
                x0 + (goal - y0) / (y1 - y0) * (x1 - x0)
                for (x0, y0), (x1, y1) in itertools.pairwise(points)
                if y1 >= goal - 1e-12
            ),
            1.0,
        )
    assert curve.share95 is not None and curve.share95[0] == pytest.approx(reach, abs=1e-9)
    # With no rule the curve is random routing's straight line.
    flat = measure([Unit(u.group, None, 1.0, u.cheap, u.strong) for u in units], 0, 0, 20)
    assert flat.apgr is not None and flat.apgr[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--conversation"], "--conversation needs --group-by"),
        (["--holdout", "0", "--cross-fit"], "--cross-fit needs a held-out part"),
    ],
)
def test_options_that_need_another_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    synth: Callable[..., Synth],
    flags: list[str],
    message: str,
) -> None:
    out = tmp_path / "o.route"
    assert synth(n_groups=10).learn("--budget", "25", *flags, out=out) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()


def _categories(folder: Path, seed: int, math_opus: float) -> tuple[Path, Path, Path]:
    """MT-Bench-shaped traffic: two-turn questions with a category, right-or-wrong scores (as
    GSM8K's and MMLU's, where a few lucky groups move a mean most); opus is right with
    `math_opus` on math questions and 0.75 elsewhere, haiku 0.6 everywhere."""
    import random

    from .synth import TIERS

    rng = random.Random(seed)
    traffic, outcomes = folder / "t.jsonl", folder / "o.jsonl"
    tiers = folder / "tiers.route"
    tiers.write_text(TIERS, encoding="utf-8")
    with traffic.open("w") as t, outcomes.open("w") as o:
        for g in range(240):
            category = rng.choice(["math", "coding", "writing", "roleplay", "stem", "extraction"])
            messages: list[dict[str, str]] = []
            for turn in (1, 2):
                words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta"]) for _ in range(8))
                messages = [*messages, {"role": "user", "content": words * rng.randint(1, 12)}]
                rid = f"q{g}/{turn}"
                meta = {"question": f"q{g}", "category": category}
                t.write(json.dumps({"id": rid, "messages": messages, "route": {"metadata": meta}}))
                t.write("\n")
                opus = math_opus if category == "math" else 0.75
                for tier, p in (("haiku", 0.6), ("opus", opus)):
                    score = 1.0 if rng.random() < p else 0.0
                    o.write(json.dumps({"id": rid, "tier": tier, "score": score}) + "\n")
                messages.append({"role": "assistant", "content": "ok"})
    return traffic, outcomes, tiers


def _learn_categories(folder: Path, seed: int, math_opus: float) -> tuple[int, Path]:
    from policyroute.cli import main

    traffic, outcomes, tiers = _categories(folder, seed, math_opus)
    out = folder / "o.route"
    argv = ["learn", str(traffic), "--outcomes", str(outcomes), "--tiers", str(tiers)]
    argv += ["--cheap", "haiku", "--strong", "opus", "--budget", "40", "--holdout", "0"]
    return main([*argv, "--group-by", "question", "-o", str(out)]), out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_structural_noise_validates_no_condition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], seed: int
) -> None:
    """The single structural conditions get the largest share of the false discovery rate;
    on categories, lengths and turns that say nothing, none holds up."""
    code, out = _learn_categories(tmp_path, seed, 0.75)
    assert code == 0
    assert "No condition held up" in capsys.readouterr().err
    assert "\nrule " not in out.read_text()


def test_a_category_that_gains_is_found_and_its_tests_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same data with opus right on 99% of math questions: the category is a rule, and
    the file checks clean and passes its inline tests."""
    code, out = _learn_categories(tmp_path, 0, 0.99)
    capsys.readouterr()
    assert code == 0
    text = out.read_text()
    assert 'metadata.category == "math"' in text
    from policyroute.cli import main

    assert main(["test", str(out)]) == 0
    assert main(["check", "--strict", str(out)]) == 0


def test_a_text_rule_test_carries_the_earlier_turn_in_its_prompt(tmp_path: Path) -> None:
    """A test cannot set `text` (it is computed from the prompt), so the inline test of a
    `text contains` rule whose phrase sits in an earlier turn puts the whole text in the
    prompt, and the compiled policy sends it where the rule says."""
    from policyroute.cli import main
    from policyroute.learn.data import Example
    from policyroute.learn.emit import inline_test_lines
    from policyroute.request import Request

    from .synth import TIERS

    params = {
        "max_tokens": 64,
        "messages": [
            {"role": "user", "content": "Prove the lemma about primes."},
            {"role": "assistant", "content": "Here it is."},
            {"role": "user", "content": "Now shorter."},
        ],
    }
    request = Request.from_anthropic(params)
    example = Example("r1", "g1", request, {"haiku": 1.0, "opus": 2.0})
    lines = inline_test_lines(example, {"text"}, "opus", "lemma", frozenset({"text"}))
    assert not any(line.strip().startswith("text") for line in lines), lines
    source = "\n".join(
        [
            'policy "t"',
            TIERS,
            'rule lemma: text contains "lemma" -> opus',
            "default -> haiku",
            *lines,
            "",
        ]
    )
    path = tmp_path / "t.route"
    path.write_text(source, encoding="utf-8")
    assert main(["test", str(path)]) == 0


def _mt_bench_shaped(folder: Path, seed: int, questions: int, math_turn2: float) -> Path:
    """TRAFFIC and OUTCOMES as a parity half of MT-Bench: `questions` two-turn questions in 8
    categories, judge scores 1-10 drawn alike for both tiers (pure noise), plus `math_turn2`
    on the strong tier's score of math questions' second turns; the learned file's path."""
    import random

    rng = random.Random(seed)
    traffic, outcomes = folder / "t.jsonl", folder / "o.jsonl"
    (folder / "tiers.route").write_text(TIERS, encoding="utf-8")
    categories = ["coding", "extraction", "humanities", "math", "reasoning", "roleplay"]
    categories += ["stem", "writing"]
    with traffic.open("w") as t, outcomes.open("w") as o:
        for q in range(questions):
            category = categories[q % len(categories)]
            messages: list[dict[str, str]] = []
            for turn in (1, 2):
                words = " ".join(rng.choice(FILLER) for _ in range(rng.randint(5, 40)))
                messages = [*messages, {"role": "user", "content": words}]
                rid = f"q{q}/{turn}"
                meta = {"question": f"q{q}", "category": category, "turn": turn}
                t.write(json.dumps({"id": rid, "messages": messages, "route": {"metadata": meta}}))
                t.write("\n")
                bump = math_turn2 if category == "math" and turn == 2 else 0.0
                for tier, extra in (("haiku", 0.0), ("opus", bump)):
                    score = min(10, max(1, round(rng.gauss(7.5, 2.5)))) + extra
                    o.write(json.dumps({"id": rid, "tier": tier, "score": score}) + "\n")
                messages.append({"role": "assistant", "content": "ok"})
    return folder / "o.route"


def _learn_mt_bench_shaped(folder: Path, seed: int, budget: str) -> tuple[int, str, Path]:
    import contextlib
    import io

    from policyroute.cli import main

    out = _mt_bench_shaped(folder, seed, 40, 0.0)
    argv = ["learn", str(folder / "t.jsonl"), "--outcomes", str(folder / "o.jsonl")]
    argv += ["--tiers", str(folder / "tiers.route"), "--cheap", "haiku", "--strong", "opus"]
    argv += ["--budget", budget, "--holdout", "0", "--group-by", "question", "-o", str(out)]
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue(), out


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 100_000), budget=st.sampled_from(["10", "25", "40"]))
@example(seed=288, budget="25")
def test_mt_bench_sized_noise_writes_a_file_that_checks_and_passes_its_tests(
    tmp_path_factory: pytest.TempPathFactory, seed: int, budget: str
) -> None:
    """On any draw of 40 questions of pure noise (categories, turns, filler words), learn
    exits 0 with a file that checks clean and passes its own tests. Seed 288 is a draw where
    about 30 variants of one phrase pass (within the 5% false discovery rate the families
    share), and where a rule reading `length < N` and `text` had no request its test could
    reproduce (a test's prompt carries the whole conversation): learn exited 1 there."""
    import contextlib
    import io

    from policyroute.cli import main

    code, err, out = _learn_mt_bench_shaped(tmp_path_factory.mktemp("mtnoise"), seed, budget)
    assert code == 0, err
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main(["check", "--strict", str(out)]) == 0
        assert main(["test", str(out)]) == 0


@pytest.mark.parametrize("seed", range(8))
def test_mt_bench_sized_noise_writes_the_single_tier(tmp_path: Path, seed: int) -> None:
    """On pure noise of MT-Bench's size nothing holds up on these draws (seeds 0-29 all
    gave the single tier when this was written; the design allows 5% of draws a false
    discovery): the single-tier policy, with its reason in the header and on stderr."""
    code, err, out = _learn_mt_bench_shaped(tmp_path, seed, "25")
    assert code == 0
    assert "No condition held up" in err
    text = out.read_text()
    assert "No condition held up" in text and "\nrule " not in text
