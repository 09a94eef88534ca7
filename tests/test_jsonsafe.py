"""policyroute.jsonsafe: the guarded JSON path (hostile numbers, nesting, surrogates, lines)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policyroute import jsonsafe
from policyroute.jsonsafe import JSONError, check_depth, iter_lines, loads

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**300), max_value=10**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)


@given(JSON_VALUES)
def test_agrees_with_json_on_ordinary_documents(value: object) -> None:
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False)):
        assert loads(text) == json.loads(text)
        assert loads(text.encode("utf-8")) == json.loads(text)


@given(st.text(max_size=200))
def test_any_text_is_a_value_or_a_json_error(text: str) -> None:
    try:
        loads(text)
    except JSONError as e:
        assert e.message and (e.line is None or e.line >= 1)


@given(st.binary(max_size=200))
def test_any_bytes_are_a_value_or_a_json_error(data: bytes) -> None:
    with contextlib.suppress(JSONError):
        loads(data)


@given(st.integers(min_value=1, max_value=3), st.integers(min_value=0, max_value=40))
def test_a_long_integer_is_reported_where_it_stands(lineno: int, pad: int) -> None:
    text = "\n" * (lineno - 1) + " " * pad + '["4", ' + "9" * 5000 + "]"
    with pytest.raises(JSONError) as info:
        loads(text, where="t.json")
    e = info.value
    assert (e.where, e.line, e.column) == ("t.json", lineno, pad + 7)
    assert "integer of 5000 digits" in e.message and e.kind == "number"
    assert str(e).startswith(f"t.json:{lineno}:{pad + 7}: ")


def test_the_longest_integers_read_and_one_more_digit_is_refused() -> None:
    top = "9" * jsonsafe.MAX_INT_DIGITS
    assert loads(top) == int(top)
    assert loads("-" + top) == -int(top)
    assert math.isfinite(float(loads(top)))
    with pytest.raises(JSONError, match="integer of 309 digits"):
        loads(top + "9")
    # A number inside a string is text, not a number.
    assert loads(json.dumps("9" * 10_000)) == "9" * 10_000


@pytest.mark.parametrize("text", ["NaN", "[1, Infinity]", '{"a": -Infinity}', "1e999", "-1e400"])
def test_non_finite_numbers_are_errors(text: str) -> None:
    with pytest.raises(JSONError) as info:
        loads(text)
    assert info.value.line == 1
    assert "not a JSON number" in info.value.message or "out of range" in info.value.message


def test_line_names_the_files_line() -> None:
    with pytest.raises(JSONError) as info:
        loads('{"a": }', where="traffic.jsonl", line=41)
    assert (info.value.line, info.value.column) == (41, 7)
    assert str(info.value) == "traffic.jsonl:41:7: invalid JSON: expecting value"


@pytest.mark.parametrize("depth", [257, 1_000, 50_000])
def test_deep_nesting_is_reported_never_a_recursion_error(depth: int) -> None:
    with pytest.raises(JSONError) as info:
        loads("[" * depth + "]" * depth)
    assert info.value.message == "nested deeper than 256 levels of arrays and objects"
    assert info.value.kind == "depth"
    assert (info.value.line, info.value.column) == (1, 257)


def test_nesting_up_to_the_limit_reads_and_the_limit_can_be_changed() -> None:
    text = '{"a":' * 128 + "[" * 128 + "]" * 128 + "}" * 128
    assert loads(text) is not None
    with pytest.raises(JSONError):
        loads(text, max_depth=255)
    # Many siblings are not depth.
    assert len(loads("[" + ",".join(["[]"] * 5000) + "]")) == 5000


def test_lone_surrogates_become_replacement_characters() -> None:
    value = loads('{"\\udc00k": ["a\\ud800b", "\\ud83d\\ude00"]}')
    assert value == {"\ufffdk": ["a\ufffdb", "\U0001f600"]}
    json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert loads('"x\udfffy"') == "x\ufffdy"


def test_invalid_utf8_is_reported_with_its_line() -> None:
    with pytest.raises(JSONError) as info:
        loads(b'{"a": 1,\n "b": "\xff"}', line=7)
    assert info.value.line == 8 and info.value.column == 8
    assert "not UTF-8" in info.value.message and info.value.kind == "encoding"
    assert loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_check_depth_on_parsed_values() -> None:
    deep: list[object] = []
    cur = deep
    for _ in range(5_000):
        nxt: list[object] = []
        cur.append({"content": nxt})
        cur = nxt
    with pytest.raises(JSONError, match="nested deeper than 100 levels") as info:
        check_depth(deep, 100, where="tool_result")
    assert info.value.where == "tool_result" and info.value.line is None
    check_depth({"a": [[1], (2,)]}, 3)
    with pytest.raises(JSONError):
        check_depth({"a": [[1], ([2],)]}, 3)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(JSONError):
        check_depth(loop)


@given(st.lists(st.text(alphabet="ab{}\n", max_size=30), max_size=8), st.integers(1, 12))
def test_iter_lines_numbers_lines_and_skips_long_ones(lines: list[str], limit: int) -> None:
    data = "\n".join(lines)
    got = list(iter_lines(io.BytesIO(data.encode()), max_bytes=limit))
    expected = data.encode().splitlines(keepends=True)
    assert [n for n, _ in got] == list(range(1, len(expected) + 1))
    for (_, raw), want in zip(got, expected, strict=True):
        body = want.rstrip(b"\n")
        assert raw == (want if len(body) <= limit else None)
    text_got = list(iter_lines(io.StringIO(data), max_bytes=limit))
    assert [n for n, _ in text_got] == [n for n, _ in got]


def test_the_error_pickles_whole() -> None:
    e = JSONError("bad", kind="number", where="f", line=2, column=3)
    back = pickle.loads(pickle.dumps(e))
    assert (back.message, back.kind, back.where, back.line, back.column) == (
        "bad",
        "number",
        "f",
        2,
        3,
    )
    assert str(back) == "f:2:3: bad"
    assert isinstance(back, ValueError)


def test_too_long_names_the_line() -> None:
    e = jsonsafe.too_long(10, where="t.jsonl", line=4)
    assert str(e) == "t.jsonl:4: line longer than 10 bytes: not read" and e.kind == "size"
    assert set(jsonsafe.KINDS) >= {e.kind, "syntax"}
