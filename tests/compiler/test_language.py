"""Example tests: the behaviour of the language that people rely on, as LANGUAGE.md states it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import policyroute
from policyroute import Classification, PolicyError, Request, StaticClassifier
from policyroute.compiler.inline_tests import run_tests

CONTRACT = Path(__file__).resolve().parents[1].parent / "tests" / "golden" / "contract.route"

TIERS = """
tier haiku  = "claude-haiku-4-5"  { input 1.00  output 5.00   max_tokens 4096 }
tier sonnet = "claude-sonnet-4-6" { input 3.00  output 15.00  max_tokens 16384 }
tier opus   = "claude-opus-4-7"   { input 5.00  output 25.00  max_tokens 32768 }
"""


def codes(text: str, **kw: object) -> list[str]:
    with pytest.raises(PolicyError) as e:
        policyroute.loads(text, **kw)  # type: ignore[arg-type]
    return [d.code for d in e.value.diagnostics if d.is_error]


def test_the_contract_example_loads_and_its_tests_pass() -> None:
    policy = policyroute.load(CONTRACT)
    assert policy.name == "coding-assistant"
    results = run_tests(policy)
    assert len(results) == 2 and all(r.passed for r in results)


@pytest.mark.parametrize(
    ("attrs", "tier", "rule"),
    [
        (
            {"prompt": "Format this JSON please, it is a long request " * 10},
            "haiku",
            "simple_words",
        ),
        ({"prompt": "re-format the table " * 20}, "haiku", "simple_words"),
        ({"prompt": "Here is some information about the product " * 10}, "sonnet", "default"),
        ({"prompt": "please   SORT\n imports. " * 40}, "haiku", "simple_words"),
        ({"prompt": "x", "domain": "database"}, "opus", "sensitive"),
        ({"prompt": "x", "context_tokens": 60_001}, "opus", "huge"),
        ({"prompt": "x", "context_tokens": 60_000}, "haiku", "quick"),
        ({"prompt": "x" * 400, "files": 6}, "opus", "huge"),
        ({"prompt": "y " * 200, "user_tier": "free"}, "haiku", "free_plan"),
        ({"prompt": "SELECT a FROM t JOIN u ON t.id = u.id\n" * 20}, "sonnet", "sql"),
        ({"prompt": "short one"}, "haiku", "quick"),
    ],
)
def test_contract_decisions(attrs: dict, tier: str, rule: str) -> None:
    decision = policyroute.load(CONTRACT).decide(**attrs)
    assert (decision.tier, decision.rule) == (tier, rule)


def test_a_decision_carries_model_max_tokens_and_ladder() -> None:
    policy = policyroute.load(CONTRACT)
    quick = policy.decide(prompt="hi")
    assert quick.model == "claude-haiku-4-5"
    assert quick.max_tokens == 1024  # the rule's option overrides the tier's 4096
    assert [t.name for t in quick.ladder] == ["sonnet", "opus"]
    assert quick.escalation.confidence_below == 0.7
    top = policy.decide(prompt="deadlock " * 50)
    assert top.tier == "opus" and top.ladder == () and top.max_tokens == 32768


def test_escalate_options_cut_the_ladder() -> None:
    policy = policyroute.loads(
        TIERS
        + """
rule stay: task == "a" -> haiku escalate never
rule one: task == "b" -> haiku escalate max 1
default -> haiku
escalate on error max 2
"""
    )
    assert policy.decide(task="a").ladder == ()
    assert [t.name for t in policy.decide(task="b").ladder] == ["sonnet"]
    assert [t.name for t in policy.decide(task="c").ladder] == ["sonnet", "opus"]


def test_no_escalate_statement_means_no_ladder() -> None:
    policy = policyroute.loads(TIERS + "default -> haiku\n")
    assert policy.decide(prompt="x").ladder == ()


def test_numbers_take_k_m_and_underscores() -> None:
    policy = policyroute.loads(
        TIERS
        + """
rule a: context_tokens >= 1.5m -> opus
rule b: context_tokens > 60_000 -> sonnet
rule c: context_tokens > 2k -> haiku
default -> sonnet
"""
    )
    assert policy.decide(context_tokens=1_500_000).rule == "a"
    assert policy.decide(context_tokens=60_001).rule == "b"
    assert policy.decide(context_tokens=60_000).rule == "c"
    assert policy.decide(context_tokens=2_000).rule == "default"


def test_missing_attributes() -> None:
    policy = policyroute.loads(
        TIERS
        + """
rule a: task != "x" and domain not in ["y"] and not files > 3 -> opus
default -> haiku
"""
    )
    # != and not in hold when the attribute is missing; a comparison on it is false.
    assert policy.decide(prompt="p").rule == "a"
    assert policy.decide(prompt="p", task="x").rule == "default"
    assert policy.decide(prompt="p", files=4).rule == "default"


def test_metadata_is_typed_by_use() -> None:
    policy = policyroute.loads(
        TIERS
        + """
rule hi: metadata.priority == "high" -> opus
rule big: metadata.size > 10 -> sonnet
rule beta: metadata.beta -> sonnet
default -> haiku
"""
    )
    assert policy.decide(metadata={"priority": "high"}).rule == "hi"
    assert policy.decide(metadata={"priority": 1}).rule == "default"
    assert policy.decide(metadata={"size": 11}).rule == "big"
    assert policy.decide(metadata={"size": "11"}).rule == "default"
    assert policy.decide(metadata={"beta": True}).rule == "beta"
    assert policy.decide(metadata={"beta": 1}).rule == "default"


CLASSIFIED = (
    TIERS
    + """
classifier intent using haiku labels ["refund", "bug", "other"] prompt "What does the user want?"
rule vip: user.tier == "enterprise" -> opus
rule refunds: intent.label == "refund" and intent.confidence >= 0.6 -> sonnet
default -> haiku
"""
)


class Counting:
    def __init__(self, answer: Classification | Exception) -> None:
        self.answer = answer
        self.calls = 0

    def classify(self, spec, request):  # type: ignore[no-untyped-def]
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_classifier_is_lazy_and_asked_once() -> None:
    policy = policyroute.loads(CLASSIFIED)
    c = Counting(Classification("refund", 0.9))
    assert policy.decide(prompt="refund me", user_tier="enterprise", classifier=c).rule == "vip"
    assert c.calls == 0  # a cheaper condition settled it
    assert policy.decide(prompt="refund me", classifier=c).rule == "refunds"
    assert c.calls == 1  # label and confidence: one call


@pytest.mark.parametrize(
    ("condition", "prompt", "calls"),
    [
        # the answer cannot change the outcome: the diagram knows, so decide() must too
        ('not intent.label == "bug" or intent.label == "bug"', "x", 0),
        ('(length > 0 and intent.label == "bug") or (length > 0 and intent.label != "bug")', "x", 0),
        ('intent.label == "bug" and intent.label == "refund"', "x", 0),
        # ...and it can
        ('(length > 0 and intent.label == "bug") or (length > 0 and intent.confidence > 0.5)', "x", 1),
        ('(length > 5 and intent.label == "bug") or intent.label == "refund"', "x", 1),
    ],
)
def test_classifier_is_asked_only_when_the_answer_can_change_the_outcome(
    condition: str, prompt: str, calls: int
) -> None:
    """Normal-form clauses are not prime implicants; a rule they cannot settle without
    asking is walked whole, so the count is the diagram walk's."""
    policy = policyroute.loads(
        CLASSIFIED.replace('intent.label == "refund" and intent.confidence >= 0.6', condition)
    )
    for explain in (False, True):
        c = Counting(Classification("refund", 0.9))
        policy.decide(prompt=prompt, classifier=c, explain=explain)
        assert c.calls == calls, (condition, explain)


@pytest.mark.parametrize(
    "answer",
    [RuntimeError("boom"), Classification("nonsense", 0.9), Classification("refund", float("nan"))],
)
def test_a_failed_classifier_has_no_label_and_zero_confidence(answer: object) -> None:
    policy = policyroute.loads(CLASSIFIED)
    assert policy.decide(prompt="x", classifier=Counting(answer)).rule == "default"  # type: ignore[arg-type]
    assert policy.decide(prompt="x").rule == "default"  # no classifier given at all


def test_static_classifier_for_tests() -> None:
    policy = policyroute.loads(CLASSIFIED)
    c = StaticClassifier({"intent": Classification("refund", 0.7)})
    assert policy.decide(prompt="x", classifier=c).rule == "refunds"


def test_explain_lists_tests_and_values() -> None:
    d = policyroute.load(CONTRACT).decide(prompt="Find the deadlock", explain=True)
    assert d.explanation is not None
    tests = {s.test: s.value for s in d.explanation}
    assert tests["prompt contains any hard"] == ["deadlock"]
    assert "domain" in tests


def test_request_from_anthropic_params() -> None:
    params = {
        "model": "auto",
        "system": [{"type": "text", "text": "You are terse."}],
        "max_tokens": 512,
        "tools": [{"name": "grep", "input_schema": {"type": "object"}}],
        "metadata": {"user_id": "u-1"},
        "messages": [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look at"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": ""},
                    },
                    {"type": "text", "text": "this"},
                ],
            },
        ],
    }
    r = Request.from_anthropic(params, task="extract", user={"tier": "free"}, files=6)
    assert r.prompt == "look at\nthis" and r.length == len("look at\nthis")
    assert r.system == "You are terse."
    assert r.text == "You are terse.\nfirst\nok\nlook at\nthis"
    assert (r.turns, r.output_tokens, r.has_tools, r.has_images) == (3, 512, True, True)
    assert (r.task, r.user_tier, r.user_id, r.files) == ("extract", "free", "u-1", 6)
    assert r.estimated_context_tokens() is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"messages": "hi"},
        {"messages": [{"role": "robot", "content": "x"}]},
        {"messages": [{"role": "user", "content": 3}]},
        {"messages": [], "max_tokens": "many"},
        {"messages": [], "route": {"files": "six"}},
        {"messages": [], "route": {"colour": "red"}},
        {"messages": [], "route": {"user": {"tier": 3}}},
    ],
)
def test_bad_requests_say_what_is_wrong(bad: dict) -> None:
    with pytest.raises(policyroute.RequestError):
        Request.from_json(bad)


# -- diagnostics ----------------------------------------------------------------------------


def test_all_errors_of_a_file_are_reported_together() -> None:
    text = (
        TIERS
        + """
rule a: length > "x" -> opus
rule b: domain < 3 -> opus
rule c: promt contains "x" -> opus
rule d: prompt contains any nothere -> opuss
rule e: prompt matches /(a)\\1/ -> opus
rule f: -> opus
default -> haiku
"""
    )
    found = codes(text)
    assert {"E201", "E202", "E105", "E103", "E102", "E302", "E001"} <= set(found)


def test_diagnostics_render_with_a_caret_and_hint() -> None:
    with pytest.raises(PolicyError) as e:
        policyroute.loads(
            TIERS + 'rule a: promt contains "x" -> opus\ndefault -> haiku\n', name="p.route"
        )
    d = e.value.diagnostics[0]
    text = d.render()
    assert text.startswith("p.route:5:9: error[E105]: unknown attribute 'promt'")
    assert "   5 | rule a: promt" in text
    assert re.search(r"\n {15}\^~~~~\n", text), text
    assert "did you mean 'prompt'?" in text


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('tier rule = "m" { input 1 output 1 }\ndefault -> rule', "E117"),
        ('tier a = "m" { input 1 }\ndefault -> a', "E112"),
        ('tier a = "m" { input 1 output 1 }\nrule x: has_tools -> a', "E107"),
        ('tier a = "m" { input 1 output 1 }\ndefault -> a\ndefault -> a', "E108"),
        ('tier a = "m" { input 1 output 1 }\ndefault -> a\nrule x: has_tools -> a', "E109"),
        ('tier a = "m" { input 1 output 1 }\nrule x: prompt -> a\ndefault -> a', "E201"),
        (
            'tier a = "m" { input 1 output 1 }\nrule x: prompt matches /a/q -> a\ndefault -> a',
            "E303",
        ),
        (
            'tier a = "m" { input 1 output 1 }\nrule x: prompt matches /(?=a)/ -> a\ndefault -> a',
            "E302",
        ),
        (
            'tier a = "m" { input 1 output 1 }\nrule x: prompt contains "a\\q" -> a\ndefault -> a',
            "E004",
        ),
        (
            'tier a = "m" { input 1 output 1 }\nrule x: prompt contains "abc -> a\ndefault -> a',
            "E002",
        ),
        ('tier a = "m" { input 1 output 1 }\ndefault -> a\nescalate on eror', "E116"),
        ('tier a = "m" { input 1 output 1 }\ndefault -> a\nescalate on confidence < 2', "E204"),
        ('tier a = "m" { input 1 output 1 }\ndefault -> a\ntest "t" { prompt = 3 } -> a', "E201"),
        ('tier a = "m" { input 1 output 1 }\ndefault -> a\ntest "t" { } -> a by nope', "E501"),
        ("default -> a", "E106"),
        ("\x00\x01binary", "E001"),
    ],
)
def test_error_codes(text: str, code: str) -> None:
    assert code in codes(text)


def test_classifier_label_outside_labels() -> None:
    assert "E203" in codes(CLASSIFIED.replace('"refund" and', '"refnd" and'))


def test_warnings_do_not_stop_loading() -> None:
    policy = policyroute.loads(
        TIERS
        + """
keywords a = ["x", "y", "x"]
keywords b = ["y"]
rule r: prompt contains any a or prompt contains any b or prompt matches /z*/ -> opus
default -> haiku
escalate on error max 5
"""
    )
    assert {d.code for d in policy.warnings} >= {"W006", "W007", "W008", "W009"}


# -- files and imports ----------------------------------------------------------------------


def write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, body in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            p.write_bytes(body)
        else:
            p.write_text(body, encoding="utf-8")


def test_imports_bring_declarations(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "shared/tiers.route": TIERS + 'import "words.route"\n',
            "shared/words.route": 'keywords hard = ["deadlock"]\n',
            "main.route": 'import "shared/tiers.route"\nrule h: prompt contains any hard -> opus\n'
            "default -> haiku\n",
        },
    )
    policy = policyroute.load(tmp_path / "main.route")
    assert policy.decide(prompt="a deadlock").tier == "opus"
    assert {p.name for p in policy.files} == {"main.route", "tiers.route", "words.route"}


def test_revision_follows_content(tmp_path: Path) -> None:
    write(tmp_path, {"t.route": TIERS, "m.route": 'import "t.route"\ndefault -> haiku\n'})
    first = policyroute.load(tmp_path / "m.route").revision
    assert policyroute.load(tmp_path / "m.route").revision == first
    (tmp_path / "t.route").write_text(TIERS.replace("5.00 ", "6.00 "), encoding="utf-8")
    assert policyroute.load(tmp_path / "m.route").revision != first


@pytest.mark.parametrize(
    ("files", "code"),
    [
        ({"m.route": 'import "nope.route"\ndefault -> a'}, "E401"),
        ({"m.route": 'import "../outside.route"\ndefault -> a'}, "E402"),
        (
            {
                "m.route": 'import "a.route"\n' + TIERS + "default -> haiku",
                "a.route": 'import "b.route"',
                "b.route": 'import "a.route"',
            },
            "E403",
        ),
        ({"m.route": 'import "m.route"\n' + TIERS + "default -> haiku"}, "E403"),
        ({"m.route": TIERS + 'import "t.route"\ndefault -> haiku', "t.route": TIERS}, "E101"),
        ({"m.route": b'tier a = "m" { input 1 output 1 }\ndefault -> a # caf\xe9\n'}, "E005"),
    ],
)
def test_import_and_file_errors(tmp_path: Path, files: dict, code: str) -> None:
    root = tmp_path / "root"
    write(root, files)
    (tmp_path / "outside.route").write_text(TIERS, encoding="utf-8")
    with pytest.raises(PolicyError) as e:
        policyroute.load(root / "m.route")
    assert code in [d.code for d in e.value.diagnostics]


def test_large_files_are_refused_cleanly(tmp_path: Path) -> None:
    big = tmp_path / "big.route"
    big.write_bytes(b"# " + b"x" * (10 * 1024 * 1024))
    with pytest.raises(PolicyError) as e:
        policyroute.load(big)
    assert e.value.diagnostics[0].code == "E005"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as e:
        policyroute.load(tmp_path / "none.route")
    assert e.value.diagnostics[0].code == "E005"


def test_revision_does_not_depend_on_where_it_is_loaded_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, {"p/t.route": TIERS, "p/m.route": 'import "t.route"\ndefault -> haiku\n'})
    monkeypatch.chdir(tmp_path)
    here = policyroute.load("p/m.route").revision
    monkeypatch.chdir(tmp_path / "p")
    assert policyroute.load("m.route").revision == here


def test_a_file_imported_along_two_paths_counts_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "shared/tiers.route": TIERS,
            "sub/more.route": 'import "../shared/tiers.route"\nkeywords k = ["x"]\n',
            "main.route": 'import "shared/tiers.route"\nimport "sub/more.route"\n'
            "rule r: prompt contains any k -> opus\ndefault -> haiku\n",
        },
    )
    policy = policyroute.load(tmp_path / "main.route")
    assert policy.decide(prompt="x").tier == "opus"
    assert len(policy.files) == 3


def test_binary_file_is_named_as_such(tmp_path: Path) -> None:
    write(tmp_path, {"b.route": b"\x7fELF\x02\x01\x01\x00\x00\x00"})
    with pytest.raises(PolicyError) as e:
        policyroute.load(tmp_path / "b.route")
    assert e.value.diagnostics[0].code == "E005"
    assert "binary" in e.value.diagnostics[0].message


def test_a_stray_token_after_a_rule_gets_a_short_message() -> None:
    with pytest.raises(PolicyError) as e:
        policyroute.loads(TIERS + "rule x: has_tools -> opus )\ndefault -> haiku\n")
    message = e.value.diagnostics[0].message
    assert message == (
        "unexpected ')'; expected a rule option (max_tokens, escalate never, escalate max) "
        "or the next statement"
    )


def test_explain_through_a_phrase_index_names_the_rule_test() -> None:
    policy = policyroute.loads(
        TIERS
        + """
keywords a = ["alpha"]
keywords b = ["beta"]
keywords c = ["gamma"]
rule ra: prompt contains any a and length > 100 -> opus
rule rb: prompt contains any b -> sonnet
rule rc: prompt contains any c -> haiku
default -> haiku
"""
    )
    assert "phrase index" in policy.root.label  # the three rules became one index node
    d = policy.decide(prompt="alpha then beta", explain=True)
    assert (d.rule, d.tier) == ("rb", "sonnet")
    assert d.explanation is not None
    tried = [(s.test, s.value) for s in d.explanation]
    assert ("prompt contains any a", ["alpha"]) in tried  # tried first, failed on length
    assert ("prompt contains any b", ["beta"]) in tried
