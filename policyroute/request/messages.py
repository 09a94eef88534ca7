"""The one request mapping: Messages API parameters (plus routing attributes) -> `Request`.

Every front end (Router, AsyncRouter, the SDK middleware, `policyroute serve`) and every
reader of traffic (replay, `route --request`) builds its `Request` here, so a request
means the same to a policy whichever way it came. Only what routing reads is validated;
everything else (new content block types, `output_config`, `context_management`, adaptive
thinking, fields the API adds tomorrow) is left alone and forwarded untouched.

What the attributes mean (docs/language.md, "Attributes from a Messages API request"):

- `prompt`: what the person wrote in the last user turn: its text blocks, without tool
  results and without `<system-reminder>` blocks (text a client such as Claude Code adds
  around the person's words). A user turn holding only tool results continues the task:
  `prompt` is then the words of the turn that started it, and `continuation` is true.
- `system`: the system prompt, and the text of `role: "system"` messages inside `messages`.
- `text`: all text of the request: system and every message, tool results included.
- `turns`: user and assistant messages.
- `context_tokens`: the caller's count, else an estimate over system, tools and messages
  (about four characters a token, 1,600 an image or document).
- `user.id`: `metadata.user_id`; Claude Code's JSON form (`account_uuid`, `device_id`,
  `session_id`) and its older `user_..._account_..._session_...` form give the stable part,
  and the session gives the conversation key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from policyroute.jsonsafe import MAX_DEPTH, JSONError, check_depth

from .attributes import CHARS_PER_TOKEN, TOKENS_PER_IMAGE
from .checks import RequestError
from .request import Request, normalize_route

ROLES = ("user", "assistant", "system")
# `isinstance(x, (dict, Mapping))` throughout: the same answer as `Mapping` alone, but a dict
# (every parsed JSON object) is matched before the ABC's check, which costs several times more.
_REMINDER = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
_OLD_USER_ID = re.compile(r"^(user_[0-9a-f]+(?:_account_[0-9a-fA-F-]*)?)_session_([0-9a-fA-F-]+)$")
_MEDIA = ("image", "document")


@dataclass(frozen=True, slots=True)
class Mapped:
    """A request as routing reads it, and what the engine needs beside the attributes."""

    request: Request
    # The conversation this request belongs to, as its client names it (Claude Code's
    # session), or None: the engine then derives one from the first turn.
    conversation: str | None
    # The last user turn holds only tool results: the task goes on (see module docs).
    continuation: bool


def _person_text(text: str) -> str:
    if "<system-reminder>" not in text:
        return text
    return _REMINDER.sub("", text).strip()


def _blocks(content: Any, where: str) -> list[Any]:
    if isinstance(content, list):  # parsed JSON: read as it is, not copied
        return content
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, Mapping) or not isinstance(content, Iterable) or isinstance(
        content, bytes
    ):
        raise RequestError(f"{where}: content must be a string or a list of content blocks")
    return list(content)


def _kind(block: Any) -> Any:
    if isinstance(block, dict):  # parsed JSON; the ABC check below costs several times more
        return block.get("type")
    return block.get("type") if isinstance(block, Mapping) else getattr(block, "type", None)


def _text_of(block: Any, where: str) -> str:
    text = block.get("text") if isinstance(block, Mapping) else getattr(block, "text", "")
    if not isinstance(text, str):
        raise RequestError(f"{where}: a text block's 'text' must be a string")
    return text


class _Reader:
    """One pass over the content: all text, the person's text, media, a size estimate."""

    def __init__(self) -> None:
        self.media = 0
        self.extra = 0  # characters outside text blocks: tool calls, thinking, new kinds

    def content(self, content: Any, where: str) -> tuple[str, str, bool]:
        """(all text, the person's text, whether it held only tool results)."""
        if isinstance(content, str):
            # A plain string is one text block: the common case, without the block walk.
            return content, _person_text(content), False
        texts: list[str] = []
        person: list[str] = []
        tool_results = 0
        for i, block in enumerate(_blocks(content, where)):
            kind = _kind(block)
            if kind == "text":
                text = block.get("text") if isinstance(block, dict) else None
                if not isinstance(text, str):  # not a plain dict's string: the general read
                    text = _text_of(block, f"{where}[{i}]")
                texts.append(text)
                mine = _person_text(text)
                if mine:
                    person.append(mine)
            elif kind in _MEDIA:
                self.media += 1
            elif kind == "tool_result":
                tool_results += 1
                inner = block.get("content") if isinstance(block, (dict, Mapping)) else None
                if inner is not None:
                    t, _, _ = self.content(inner, f"{where}[{i}].content")
                    if t:
                        texts.append(t)
            else:  # tool_use, thinking, new block types: their size counts, nothing else
                self.extra += _size(block)
        return "\n".join(texts), "\n".join(person), tool_results > 0 and not person


def _size(value: Any) -> int:
    """Characters of the strings in `value`, for the context estimate (iterative)."""
    total = 0
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            total += len(v)
        elif isinstance(v, (dict, Mapping)):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return total


def claude_code_user(user_id: str) -> tuple[str, str | None]:
    """(the stable user, the session) of a `metadata.user_id`; other ids are kept whole."""
    if user_id.startswith("{"):
        try:
            obj = json.loads(user_id)
        except ValueError:
            return user_id, None
        if isinstance(obj, dict):
            session = obj.get("session_id")
            stable = obj.get("account_uuid") or obj.get("device_id")
            if isinstance(stable, str) and stable:
                return stable, session if isinstance(session, str) and session else None
        return user_id, None
    m = _OLD_USER_ID.match(user_id)
    if m is not None:
        return m.group(1), m.group(2)
    return user_id, None


def from_messages_api(params: Mapping[str, Any], /, **attrs: Any) -> Mapped:
    """The `Request` of Messages API parameters; `attrs` are routing attributes (keyword or
    `route` object form). Raises RequestError naming what is wrong."""
    try:
        check_depth(params, MAX_DEPTH, where="request")
    except JSONError as e:
        raise RequestError(f"the request nests deeper than {MAX_DEPTH} levels") from e
    return from_parsed(params, attrs)


def from_parsed(params: Mapping[str, Any], attrs: Mapping[str, Any]) -> Mapped:
    """`from_messages_api` for parameters that `jsonsafe.loads` made: their nesting is
    already bounded by ``MAX_DEPTH`` (the parse refuses deeper documents), so the depth walk
    is not repeated. Only `messages`, `system`, `max_tokens`, `metadata` and `tools` are
    read, so a TRAFFIC line can be passed whole, its `id` and `route` keys and all."""
    messages = params.get("messages")
    if messages is None:
        messages = []
    if not isinstance(messages, list | tuple):
        raise RequestError("'messages' must be a list")
    reader = _Reader()
    systems: list[str] = []
    if params.get("system") is not None:
        text, _, _ = reader.content(params["system"], "system")
        if text:
            systems.append(text)
    texts: list[str] = []
    prompt: str | None = None
    last_user_only_tools = False
    turns = 0
    for i, message in enumerate(messages):
        if not isinstance(message, (dict, Mapping)):
            raise RequestError(f"messages[{i}] must be an object with 'role' and 'content'")
        role = message.get("role")
        if role not in ROLES:
            raise RequestError(f"messages[{i}].role must be 'user', 'assistant' or 'system'")
        text, person, only_tools = reader.content(message.get("content", ""), f"messages[{i}]")
        if role == "system":
            if text:
                systems.append(text)
            continue
        turns += 1
        texts.append(text)
        if role == "user":
            last_user_only_tools = only_tools
            if not only_tools:
                prompt = person
    system = "\n".join(systems) if systems else None
    max_tokens = params.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise RequestError("'max_tokens' must be a whole number")
    route = normalize_route(attrs)
    conversation = None
    api_meta = params.get("metadata")
    if isinstance(api_meta, (dict, Mapping)) and isinstance(api_meta.get("user_id"), str):
        user, conversation = claude_code_user(api_meta["user_id"])
        route.setdefault("user_id", user)
    tools = params.get("tools")
    text = "\n".join([*systems, *texts])
    extra = reader.extra + (_size(tools) if tools else 0)
    if "context_tokens" not in route and extra:
        # Tool definitions and non-text blocks are in the context too (Claude Code's 24
        # tool schemas are ten times its words); without them the text's estimate stands.
        chars = len(text) + extra
        route["context_tokens"] = -(-chars // CHARS_PER_TOKEN) + min(
            reader.media, 1
        ) * TOKENS_PER_IMAGE
    request = Request(
        prompt,
        system=system,
        text=text,
        turns=turns,
        output_tokens=max_tokens,
        has_tools=bool(tools),
        has_images=reader.media > 0,
        **route,
    )
    return Mapped(request, conversation, last_user_only_tools)
