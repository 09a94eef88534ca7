"""Replay's fast path of a line and the general one agree, on random and hostile input.

Replay maps a parsed TRAFFIC line with `messages.from_parsed` (no second depth walk, no
copies of the line) and jsonsafe calls the C scanner itself; the general path is the public
`Request.from_json` / `from_anthropic` of the line without `id` and `time`, and
`json.JSONDecoder.decode`. Same request, or the same error, word for word.
"""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policyroute import jsonsafe
from policyroute.measure import traffic
from policyroute.measure.traffic import Location, TrafficItem, parse_line
from policyroute.request import Request, RequestError
from policyroute.request.messages import _Reader, from_messages_api, from_parsed

KEYS = [
    "messages", "system", "role", "content", "type", "text", "tool_result", "route", "task",
    "user", "tier", "id", "files", "max_tokens", "metadata", "user_id", "tools", "params",
    "cls", "prompt", "classifiers", "context_tokens", "domain", "spend", "label",
]  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(
        [
            *KEYS,
            "user",
            "assistant",
            "system",
            "image",
            "tool_use",
            "<system-reminder>x</system-reminder> hi",
        ]
    ),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=25,
)
blocks = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image", "document", "tool_result", "tool_use", "x"])},
    optional={"text": json_values, "content": json_values, "input": json_values},
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "assistant", "system", "bot"])},
        optional={
            "content": st.one_of(st.text(max_size=20), st.lists(blocks, max_size=4), json_values)
        },
    ),
    max_size=4,
)
routes = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "task": json_values,
            "user": st.one_of(
                st.fixed_dictionaries({}, optional={"tier": json_values, "id": json_values}),
                json_values,
            ),
            "files": st.one_of(st.integers(-2, 9), json_values),
            "context_tokens": st.one_of(st.integers(0, 9), st.floats(0, 9)),
            "user_tier": json_values,
            "metadata": json_values,
            "classifiers": json_values,
            "params": json_values,
            "cls": json_values,
        },
    ),
    json_values,
)
lines = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values,
        "messages": st.one_of(messages, json_values),
        "system": st.one_of(st.text(max_size=10), st.lists(blocks, max_size=2), json_values),
        "route": routes,
        "max_tokens": st.one_of(st.integers(-3, 5000), json_values),
        "metadata": st.one_of(
            st.fixed_dictionaries({"user_id": st.text(max_size=10)}), json_values
        ),
        "tools": json_values,
        "time": st.one_of(st.integers(0, 2**31), st.just("2026-12-02T10:00:00Z"), json_values),
    },
)


def fields(r: Request) -> dict[str, Any]:
    return {k: getattr(r, k) for k in Request.__slots__}


def outcome(make: Any) -> tuple[Any, ...]:
    try:
        return ("ok", fields(make()))
    except Exception as e:  # the very error, whatever it is
        return ("error", type(e), str(e))


def general(obj: dict[str, Any]) -> Request:
    return Request.from_json({k: v for k, v in obj.items() if k not in ("id", "time")})


def fast(obj: dict[str, Any]) -> Request:
    route = obj.get("route", {})
    if not isinstance(route, dict):
        return general(obj)  # the one check parse_line makes before from_parsed
    return from_parsed(obj, route).request


@settings(max_examples=400, deadline=None)
@given(lines)
def test_from_parsed_agrees_with_from_json(obj: dict[str, Any]) -> None:
    assert outcome(lambda: fast(obj)) == outcome(lambda: general(obj))


@settings(max_examples=200, deadline=None)
@given(st.one_of(messages.map(lambda m: {"messages": m}), lines))
def test_from_parsed_agrees_with_from_messages_api(params: dict[str, Any]) -> None:
    assert outcome(lambda: from_parsed(params, {}).request) == outcome(
        lambda: from_messages_api(params).request
    )


def reference_line(raw: bytes, where: Location) -> Any:
    """parse_line of a request or batch line as it was written before the fast path: the
    line copied without `id` and `time` into the public Request.from_json (and a batch's
    `params` into Request.from_anthropic)."""
    try:
        obj = jsonsafe.loads(raw)
    except jsonsafe.JSONError as e:
        return traffic._fail(where, traffic.json_reason(e), traffic.json_problem(e))
    if not isinstance(obj, dict):
        return parse_line(raw, where)  # not a mapping question
    try:
        if "custom_id" in obj and "params" in obj:
            if not isinstance(obj["custom_id"], str) or not isinstance(obj["params"], dict):
                return parse_line(raw, where)
            request = Request.from_anthropic(obj["params"])
            return TrafficItem(obj["custom_id"], None, request, where, "batch")
        rid = traffic._id(obj["id"]) if "id" in obj else str(where.line)
        if rid is None:
            return parse_line(raw, where)
        body = {k: v for k, v in obj.items() if k not in ("id", "time")}
        at = traffic._time(obj.get("time"))
        return TrafficItem(rid, None, Request.from_json(body), where, "request", time=at)
    except RequestError as e:
        return traffic._fail(where, "bad request", str(e))
    except ValueError as e:
        return traffic._fail(where, "bad time", str(e))


def comparable(item: Any) -> Any:
    if isinstance(item, TrafficItem):
        return (item.id, item.shape, item.time, item.where, fields(item.request))
    return item


batches = st.fixed_dictionaries(
    {"custom_id": st.one_of(st.text(max_size=5), json_values), "params": lines}
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(lines.map(lambda obj: {"messages": [], **obj}), batches))
def test_parse_line_agrees_with_the_general_path(obj: dict[str, Any]) -> None:
    raw = json.dumps(obj).encode()
    where = Location("t", 7)
    assert comparable(parse_line(raw, where)) == comparable(reference_line(raw, where))


json_texts = st.one_of(
    json_values.map(json.dumps),
    json_values.map(lambda v: " \n" + json.dumps(v, indent=1) + "\t \r\n"),
    st.text(alphabet=' \t\n\r{}[]",:0123456789.eE-+truefalsnNIy\\u', max_size=30),
    json_values.map(lambda v: json.dumps(v) + " x"),
)


@settings(max_examples=500, deadline=None)
@given(json_texts)
def test_the_direct_scanner_call_is_json_decode(text: str) -> None:
    def general() -> tuple[Any, ...]:
        try:
            return ("ok", repr(jsonsafe._DECODER.decode(text)))
        except json.JSONDecodeError as e:
            return ("error", e.msg, e.pos, e.lineno, e.colno)
        except Exception as e:
            return ("raised", type(e))

    def direct() -> tuple[Any, ...]:
        try:
            return ("ok", repr(jsonsafe._decode(text)))
        except json.JSONDecodeError as e:
            return ("error", e.msg, e.pos, e.lineno, e.colno)
        except Exception as e:
            return ("raised", type(e))

    assert direct() == general()


class Block:
    """An SDK-style content block: attributes, not a mapping."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)


def read(content: Any) -> tuple[Any, ...]:
    reader = _Reader()
    try:
        got: tuple[Any, ...] = reader.content(content, "messages[0]")
    except Exception as e:
        return ("error", type(e), str(e))
    return (*got, reader.media, reader.extra)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30) | st.sampled_from(["<system-reminder>a</system-reminder> b", ""]))
def test_a_string_content_reads_as_its_one_text_block(text: str) -> None:
    assert read(text) == read([{"type": "text", "text": text}])


@settings(max_examples=300, deadline=None)
@given(st.lists(blocks, max_size=5))
def test_dict_blocks_read_as_mappings_and_objects_do(content: list[dict[str, Any]]) -> None:
    # The dict fast path against the general reads: any Mapping, and attribute access.
    want = read([MappingProxyType(b) for b in content])
    assert read(content) == want
    assert read(tuple(content)) == want
    if not any(b["type"] in ("tool_result", "tool_use", "x") for b in content):
        # (sizes and inner content are read through mappings only)
        assert read([Block(b) for b in content])[:3] == want[:3] or want[0] == "error"


def test_a_bad_block_is_named_by_its_place() -> None:
    msg = "a text block's 'text' must be a string"
    assert read([{"type": "text", "text": "a"}, {"type": "text", "text": 3}]) == (
        "error",
        RequestError,
        f"messages[0][1]: {msg}",
    )
    inner = [{"type": "tool_result", "content": [{"type": "text"}]}]
    assert read(inner) == ("error", RequestError, f"messages[0][0].content[0]: {msg}")


def test_a_route_key_named_like_a_parameter_is_an_unknown_attribute() -> None:
    # It used to reach Request.from_anthropic(params, **route) as a second `params` (a
    # TypeError that stopped the whole replay).
    for key in ("params", "cls"):
        raw = json.dumps({"messages": [], "route": {key: 1}}).encode()
        got = parse_line(raw, Location("t", 3))
        assert got is not None and not isinstance(got, TrafficItem)
        assert got.reason == "bad request"
        assert got.detail.startswith(f"unknown routing attribute(s): {key}; known: ")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="[{}]a\\u", max_size=40), st.integers(0, 12))
def test_the_bounded_bracket_count_is_the_count(text: str, limit: int) -> None:
    assert jsonsafe._more_brackets(text, limit) == (text.count("[") + text.count("{") > limit)
