"""`policyroute learn`: it finds what was planted, keeps the budget, writes a clean, tested,
canonical policy, and its held-out header is exactly what replay reports."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policyroute
from policyroute.cli import main
from policyroute.learn.data import Example, load_examples, split_by_group
from policyroute.learn.emit import condition_text
from policyroute.learn.features import generate
from policyroute.learn.learner import Settings
from policyroute.learn.run import learn
from policyroute.learn.tiers import read_tiers
from policyroute.request import Request

from .synth import Synth, write

SLOW = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _learn(folder: Path, budget: float, *, seed: int = 0, holdout: float = 0.3, **synth: object):
    traffic, outcomes, tiers_path = write(folder, seed=seed, **synth)  # type: ignore[arg-type]
    tiers = read_tiers(tiers_path)
    loaded = load_examples(
        [str(traffic)], [str(outcomes)], tiers.tiers, "haiku", "opus", "conversation"
    )
    s = Settings("haiku", "opus", budget, holdout=holdout, group_by="conversation", seed=seed)
    return learn(
        loaded, tiers, s, folder / "learned.route", traffic=[str(traffic)], outcomes=[str(outcomes)]
    ), loaded


@SLOW
@given(
    planted=st.sampled_from(["quantum", "deadlock", "theorem", "zebra crossing"]),
    seed=st.integers(0, 10_000),
)
def test_finds_the_planted_keyword(
    tmp_path_factory: pytest.TempPathFactory, planted: str, seed: int
) -> None:
    folder = tmp_path_factory.mktemp("synth")
    # The planted keyword stands in about 15% of the requests, well inside a 30% budget.
    result, _ = _learn(folder, 0.3, planted=planted, seed=seed, share=0.15)
    conditions = [r.condition for r in result.rules]
    phrases = [str(p.value) for r in result.rules for p in (r.item.parts or (r.item,))]
    # A word of a planted two-word phrase matches exactly the same requests; the simpler wins.
    found = {planted, *planted.split()}
    assert found & set(phrases), conditions
    # The planted keyword decides first: it is the steadiest gain per strong call.
    assert found & {str(p.value) for p in (result.rules[0].item.parts or (result.rules[0].item,))}
    # And the policy it wrote routes a new request carrying it to the strong tier.
    prompt = f"Please apple river stone {planted} garden window market."  # shaped like training
    assert result.policy.decide(prompt=prompt).tier == "opus"


@SLOW
@given(
    budget=st.sampled_from([0.05, 0.1, 0.2, 0.3, 0.5]),
    share=st.floats(0.1, 0.8),
    seed=st.integers(0, 10_000),
)
def test_budget_holds_on_training(
    tmp_path_factory: pytest.TempPathFactory, budget: float, share: float, seed: int
) -> None:
    folder = tmp_path_factory.mktemp("budget")
    result, _ = _learn(folder, budget, planted="quantum", share=share, seed=seed)
    if not result.rules:  # a budget too small for any validated rule: all cheap, said so
        assert "every request goes to haiku" in result.reason
        assert "\nrule " not in result.text
    strong = sum(result.policy.decide(ex.request).tier == "opus" for ex in result.split.train)
    assert strong / len(result.split.train) <= budget + 1e-12
    assert result.train_strong_share == strong / len(result.split.train)


def _cli(*args: str) -> int:
    return main(list(args))


def test_emitted_file_round_trips_fmt_check_and_test(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    out = tmp_path / "learned.route"
    learned = synth().learn(
        "--budget", "25%", "--group-by", "conversation", strong="claude-opus-4-7"
    )
    assert learned == 0
    text = out.read_text()
    assert 'import "tiers.route"' in text  # the tiers file is in the same folder: imported
    assert _cli("fmt", "--check", str(out)) == 0
    assert _cli("check", "--strict", str(out)) == 0
    assert _cli("test", str(out)) == 0
    assert re.search(r"^\} -> opus by \w+$", text, re.M)
    assert re.search(r"^\} -> haiku by default$", text, re.M)
    assert "bootstrap resamples" in text and "95% CI" in text and "cumulative strong share" in text
    capsys.readouterr()


def test_tiers_outside_the_folder_are_repeated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    data = synth()
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "learned.route"
    assert data.learn("--budget", "25", out=out) == 0
    text = out.read_text()
    assert "import" not in text.split("policy ")[1]
    assert 'tier opus  = "claude-opus-4-7"' in text and "sonnet" not in text
    assert _cli("check", "--strict", str(out)) == 0
    capsys.readouterr()


def test_heldout_header_equals_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    data = synth(seed=3)
    outcomes = data.outcomes
    out = tmp_path / "learned.route"
    heldout = tmp_path / "heldout.jsonl"
    flags = ["--budget", "30", "--group-by", "conversation", "--seed", "5"]
    assert data.learn(*flags, "--write-heldout", str(heldout)) == 0
    capsys.readouterr()
    assert (
        _cli(
            "replay",
            str(out),
            str(heldout),
            "--outcomes",
            str(outcomes),
            "--group-by",
            "conversation",
            "--seed",
            "5",
            "--format",
            "json",
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    q = report["quality"]
    header = "\n".join(line for line in out.read_text().splitlines() if line.startswith("#"))
    flat = " ".join(header.replace("#", " ").split())
    share = report["tiers"]["opus"]["share"]
    expected = [
        f"opus share {share:.1%}",
        f"mean score {q['score']:.3g} [{q['score_ci95'][0]:.3g}, {q['score_ci95'][1]:.3g}]",
        f"= {q['pct_of_top']:.1f}% of all-opus",
        f"[{q['ci95'][0]:.1f}, {q['ci95'][1]:.1f}]",
        f"random routing at the same share: {q['random_same_share']['score']:.3g}",
        f"lift over random {q['lift_over_random']['value']:+.3g}",
        f"one-sided p = {q['lift_over_random']['p_value']:.3g}",
        f"{report['replayed']} requests",
    ]
    for figure in expected:
        assert figure in flat, (figure, flat)
    # The held-out split is exactly the groups learn held out: none was trained on.
    held_ids = {json.loads(line)["id"] for line in heldout.read_text().splitlines()}
    train_text = out.read_text()
    for rid in held_ids:
        assert f'"training request {rid}"' not in train_text


def test_heldout_report_is_replays_object(tmp_path: Path) -> None:
    """In-process: the HeldOut learn keeps is replay's report on the held-out lines, figure for
    figure, including the bootstrap intervals (same resamples, same seed)."""
    from policyroute.measure.outcomes import read_outcomes
    from policyroute.measure.replay import ReplayOptions, replay

    result, loaded = _learn(tmp_path, 0.25, planted="quantum", seed=11)
    assert result.heldout is not None
    path = tmp_path / "held.jsonl"
    from policyroute.learn.evaluate import write_lines

    write_lines(
        [loaded.items[ex.id].where for ex in result.split.heldout],
        [str(tmp_path / "traffic.jsonl")],
        path,
    )
    tiers = read_tiers(tmp_path / "tiers.route")
    again = replay(
        result.policy,
        [path],
        read_outcomes([tmp_path / "outcomes.jsonl"], tiers.tiers),
        ReplayOptions(group_by="conversation"),
        bootstrap=2000,
        seed=11,
    ).to_json()
    assert again["quality"] == result.heldout.report["quality"]
    assert again["tiers"] == result.heldout.report["tiers"]


def test_candidate_masks_are_the_languages_own_semantics(tmp_path: Path) -> None:
    """Each candidate's truth on each training request equals what a policy made of that one
    condition decides: what the learner measured is what the rule will do."""
    write(tmp_path, planted="zebra crossing", n_groups=60)
    tiers = read_tiers(tmp_path / "tiers.route")
    loaded = load_examples(
        [str(tmp_path / "traffic.jsonl")],
        [str(tmp_path / "outcomes.jsonl")],
        tiers.tiers,
        "haiku",
        "opus",
        None,
    )
    extra = [
        Example(f"x{i}", f"x{i}", Request(p, turns=t, task=task), {"haiku": 1.0, "opus": 2.0})
        for i, (p, t, task) in enumerate(
            [
                ("```py\nprint(1)\n```", 1, "code"),
                ("what is 12 + 30 = ? and 4*5", 3, "math"),
                ("see https://example.com/a/b", 2, "code"),
                ("\\frac{1}{2} and $x^2$", 1, "math"),
                ("1. one\n2. two\n- three", 5, "code"),
                ("who? what? why?", 1, "chat"),
            ]
            * 4
        )
    ]
    train = [*loaded.examples, *extra]
    cands = generate(train, min_support=3, min_groups=2)
    kinds = {i.kind for i in cands.items}
    assert {"phrase", "regex", "above", "below", "value"} <= kinds
    for item, mask in zip(cands.items, cands.masks, strict=True):
        cond = condition_text(item)
        policy = policyroute.loads(f"{tiers_text()}rule r: {cond} -> opus\ndefault -> haiku\n")
        decided = [policy.decide(ex.request).tier == "opus" for ex in train]
        assert decided == [bool(x) for x in mask], cond


def tiers_text() -> str:
    from .synth import TIERS

    return TIERS


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=40),
    holdout=st.floats(0.0, 0.9),
    seed=st.integers(0, 100),
)
def test_split_never_cuts_a_group(sizes: list[int], holdout: float, seed: int) -> None:
    examples = [
        Example(f"{g}-{i}", f"g{g}", Request("x"), {})
        for g, n in enumerate(sizes)
        for i in range(n)
    ]
    split = split_by_group(examples, holdout, seed)
    train_groups = {ex.group for ex in split.train}
    held_groups = {ex.group for ex in split.heldout}
    assert not train_groups & held_groups
    assert len(split.train) + len(split.heldout) == len(examples)
    assert split.train, "something is always left to learn from"
    if holdout == 0.0:
        assert not split.heldout
    # The split depends on the groups and the seed, not on the order requests arrive in.
    again = split_by_group(list(reversed(examples)), holdout, seed)
    assert again.heldout_groups == split.heldout_groups


def test_budgets_write_policies_and_a_curve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    assert synth().learn("--budgets", "10,20,30%,40", "--group-by", "conversation") == 0
    for b in (10, 20, 30, 40):
        assert _cli("check", "--strict", str(tmp_path / f"learned-{b}.route")) == 0
    rows = (tmp_path / "learned-curve.csv").read_text().splitlines()
    assert rows[0].startswith("budget_pct,policy,rules,train_strong_share")
    assert [r.split(",")[0] for r in rows[1:]] == ["10", "20", "30", "40"]
    html = (tmp_path / "learned-curve.html").read_text()
    assert "<svg" in html and "random routing" in html
    assert not re.search(r"""(src|href)\s*=|url\(|@import|<script|<link""", html, re.I)
    capsys.readouterr()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--budget", "abc"], "expected a percentage"),
        (["--budget", "0"], "more than 0"),
        (["--budget", "120%"], "at most 100"),
        (["--budgets", "10,10"], "listed twice"),
        (["--budget", "25", "--holdout", "100"], "less than 100"),
        (["--budget", "25", "--max-rules", "0"], "1 or more"),
    ],
)
def test_bad_flags_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    synth: Callable[..., Synth],
    args: list[str],
    message: str,
) -> None:
    data = synth(n_groups=10)
    with pytest.raises(SystemExit) as e:
        data.learn(*args, out=tmp_path / "o.route")
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, message",
    [
        ({"strong": "gpt-9"}, "declares no such tier or model"),
        ({"cheap": "opus", "strong": "haiku"}, "stands above"),
        ({"tiers": "missing.route"}, "no such file"),
        ({"out": "nowhere/o.route"}, "no such folder"),
    ],
)
def test_usage_errors_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    synth: Callable[..., Synth],
    change: dict[str, str],
    message: str,
) -> None:
    data = synth(n_groups=10)
    given: dict[str, Any] = {"out": tmp_path / "o.route"}
    for k, v in change.items():
        given[k] = tmp_path / v if k in ("tiers", "out") else v
    assert data.learn("--budget", "25", **given) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_nothing_to_learn_writes_the_single_tier_policy_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    """Pure noise: an honest "content routing does not pay here" is a result (exit 0), with
    the reason in the header and on stderr, and the file checks clean."""
    out = tmp_path / "o.route"
    assert synth(gain=0.0, share=0.0).learn("--budget", "25", out=out) == 0
    err = capsys.readouterr().err
    assert "No condition held up" in err and "does not pay" in err
    text = out.read_text()
    assert "No condition held up" in text and "\nrule " not in text
    assert "default -> haiku" in text and "tier opus" not in text
    assert _cli("check", "--strict", str(out)) == 0
    capsys.readouterr()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_pure_noise_validates_no_condition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth], seed: int
) -> None:
    """The family bars and the loose fold bar keep noise out on several draws, with the
    holdout at 0 (the most training data, the most candidates) and conversations of two
    turns, where a lucky phrase's two turns travel together."""
    out = tmp_path / "o.route"
    data = synth(gain=0.0, share=0.0, seed=seed, n_groups=300)
    assert data.learn("--budget", "40", "--holdout", "0", out=out) == 0
    assert "No condition held up" in capsys.readouterr().err
    assert "\nrule " not in out.read_text()


def test_bad_lines_are_reported_and_learning_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    data = synth()
    traffic = data.traffic
    with traffic.open("a") as f:
        f.write("{not json\n")
    out = tmp_path / "o.route"
    assert data.learn("--budget", "25", out=out) == 0
    err = capsys.readouterr().err
    assert f"{traffic}:301: invalid JSON" in err
    assert out.exists()


def test_learn_stays_out_of_import_policyroute() -> None:
    code = (
        "import sys, policyroute, policyroute.cli; policyroute.cli.make_parser(); "
        "bad = [m for m in ('numpy', 'sklearn', 'policyroute.learn.select') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_numpy_free_emitted_policy(tmp_path: Path) -> None:
    """The policy learn writes loads and decides in a process that never imports numpy."""
    result, _ = _learn(tmp_path, 0.25, planted="quantum")
    path = tmp_path / "learned.route"
    path.write_text(result.text)
    code = (
        "import sys, policyroute; p = policyroute.load(sys.argv[1]); "
        "print(p.decide(prompt='Please quantum now').tier); assert 'numpy' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "opus", done.stderr
    assert np is not None


def test_a_whole_policy_as_tiers_is_repeated_not_imported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], synth: Callable[..., Synth]
) -> None:
    """A TIERS.route with keyword sets of its own would share phrases with learned ones."""
    data = synth(planted="deadlock")
    tiers = tmp_path / "app.route"
    tiers.write_text(
        tiers_text() + 'keywords hard = ["deadlock", "race condition"]\n'
        "rule hard_words: prompt contains any hard -> opus\ndefault -> sonnet\n"
    )
    out = tmp_path / "learned.route"
    assert data.learn("--budget", "30", tiers=tiers) == 0
    text = out.read_text()
    assert "import" not in text.split("policy ")[1] and "declares more than tiers" in text
    assert _cli("check", "--strict", str(out)) == 0
    capsys.readouterr()


def test_attribute_rules_and_unspellable_metadata_keys(tmp_path: Path) -> None:
    """A signal in a request attribute becomes an `in`/`==` rule; a metadata key the language
    cannot spell is never a condition (and never breaks the emitted file)."""
    traffic, outcomes, tiers_path = write(tmp_path, planted="apple", share=0.0)
    lines = []
    for i, line in enumerate(traffic.read_text().splitlines()):
        obj = json.loads(line)
        hard = i % 5 == 0
        obj["route"]["metadata"].update({"kind": "proof" if hard else "chat", "odd-key": "x"})
        obj["route"]["task"] = "math" if hard else "talk"
        lines.append(json.dumps(obj))
    traffic.write_text("\n".join(lines) + "\n")
    scores = []
    for i, line in enumerate(outcomes.read_text().splitlines()):
        obj = json.loads(line)
        if (i // 2) % 5 == 0 and obj.get("model") == "claude-opus-4-7":
            obj["score"] += 3
        scores.append(json.dumps(obj))
    outcomes.write_text("\n".join(scores) + "\n")
    tiers = read_tiers(tiers_path)
    loaded = load_examples(
        [str(traffic)], [str(outcomes)], tiers.tiers, "haiku", "opus", "conversation"
    )
    s = Settings("haiku", "opus", 0.3, group_by="conversation")
    result = learn(
        loaded, tiers, s, tmp_path / "l.route", traffic=[str(traffic)], outcomes=[str(outcomes)]
    )
    assert result.rules[0].condition in ('task == "math"', 'metadata.kind == "proof"')
    assert "odd-key" not in result.text.split("policy ")[1].split("test ")[0]


SIGNALS = {
    "long": lambda rng, hard: "word " * (rng.randint(80, 120) if hard else rng.randint(5, 40)),
    "fence": lambda rng, hard: ("```py\nx = 1\n```\n" if hard else "") + "explain this " * 3,
    "latex": lambda rng, hard: ("solve $x^2 = 4$ " if hard else "say hi ") + "please",
    "turns": lambda rng, hard: "and then what happened next",
}


@settings(max_examples=10, deadline=None)
@given(
    signal=st.sampled_from(sorted(SIGNALS)),
    seed=st.integers(0, 10_000),
    budget=st.sampled_from([0.2, 0.3, 0.5]),
    task_signal=st.booleans(),
)
def test_any_learned_policy_checks_clean_and_keeps_its_budget(
    signal: str, seed: int, budget: float, task_signal: bool
) -> None:
    """Whatever kind of condition carries the gain (length, a regex, turns, an attribute),
    learn either refuses clearly or writes a file that loads with zero diagnostics, formats to
    itself, passes its own tests and keeps the budget on training."""
    import random

    from policyroute.learn.data import Loaded
    from policyroute.learn.tiers import TierFile
    from policyroute.measure.outcomes import Outcomes
    from policyroute.policy import loads

    rng = random.Random(seed)
    examples = []
    for i in range(240):
        hard = rng.random() < 0.2
        prompt = SIGNALS[signal](rng, hard)
        turns = (3 if hard else 1) if signal == "turns" else 1
        task = ("proof" if hard else "chat") if task_signal else rng.choice(["a", "b", "c"])
        base = rng.uniform(3, 6)
        scores = {"haiku": base + rng.gauss(0, 1), "opus": base + 3 * hard + rng.gauss(0, 1)}
        examples.append(
            Example(f"r{i}", f"g{i // 2}", Request(prompt, turns=turns, task=task), scores)
        )
    loaded = Loaded(examples, len(examples), [], 0, {}, Outcomes())
    declared = loads(tiers_text() + "default -> haiku\n").tiers
    # A tiers file outside the output folder: the learned file repeats the declarations.
    tiers = TierFile(
        Path("/elsewhere/tiers.route"),
        declared,
        {t.name: f'tier {t.name} = "{t.model}" {{ input 1 output 5 }}' for t in declared},
        frozenset(t.name for t in declared),
        True,
    )
    s = Settings("haiku", "opus", budget, holdout=0.0, group_by=None, seed=seed)
    result = learn(loaded, tiers, s, Path("/tmp/learned.route"), traffic=[], outcomes=[])
    strong = sum(result.policy.decide(ex.request).tier == "opus" for ex in examples)
    assert strong / len(examples) <= budget + 1e-12
    assert result.policy.warnings == []
    # Rules are ordered by gain: the cumulative shares rise, and end at the training share.
    shares = [r.cumulative_share for r in result.rules]
    assert shares == sorted(shares) and (not shares or shares[-1] == result.train_strong_share)
