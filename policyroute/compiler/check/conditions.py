"""Conditions: attributes and their types, operators, values, phrases and regexes."""

from __future__ import annotations

from ...request import attributes
from ...request.attributes import BOOL, DYNAMIC, INT, LABEL, NUMBER, STRING, TEXT, lookup
from ...syntax import ast
from ...syntax.diagnostics import did_you_mean
from ...syntax.source import Source, Span
from ..features import RegexError, compile_regex, normalize_phrase
from .base import CheckerBase
from .model import (
    CLASSIFIER_FIELDS,
    _article,
    _describe,
    _num_kind,
)


class Conditions(CheckerBase):
    def attr_type(self, attr: ast.Attr, src: Source) -> str | None:
        """The type of an attribute reference, or None after reporting it unknown."""
        parts = attr.parts
        if (
            parts[0] in self.policy.classifiers
            or ("classifier", parts[0]) in self.policy.decl_spans
            or ("classifier", parts[0]) in self._broken
        ):
            if len(parts) == 2 and parts[1] in CLASSIFIER_FIELDS:
                self.policy.used.add(("classifier", parts[0]))
                return LABEL if parts[1] == "label" else NUMBER
            self.error(
                "E105",
                f"a classifier has '.label' and '.confidence', not '{'.'.join(parts[1:])}'",
                src,
                attr.span,
                did_you_mean(".".join(parts[1:]), CLASSIFIER_FIELDS),
            )
            return None
        info = lookup(attr.dotted)
        if (
            info is None
            and self.imports_failed
            and len(parts) == 2
            and parts[1] in CLASSIFIER_FIELDS
        ):
            return None  # most likely a classifier of the file that failed to import
        if info is None:
            known = [*attributes.ATTRIBUTES, *(f"{c}.label" for c in self.policy.classifiers)]
            hint = did_you_mean(attr.dotted, known)
            if hint is None and len(parts) == 2 and parts[1] in CLASSIFIER_FIELDS:
                hint = f"no classifier named '{parts[0]}' is declared"
            self.error("E105", f"unknown attribute '{attr.dotted}'", src, attr.span, hint)
            return None
        return info.type

    def _value_fits(self, attr_type: str, value: ast.Value) -> bool:
        if attr_type == DYNAMIC:
            return True
        if isinstance(value, ast.Bool):
            return attr_type == BOOL
        if isinstance(value, ast.Num):
            return _num_kind(attr_type)
        return attr_type in (STRING, TEXT, LABEL)

    def _label_check(self, attr: ast.Attr, value: ast.Value, src: Source) -> None:
        spec = self.policy.classifiers.get(attr.parts[0])
        if spec is not None and isinstance(value, ast.Str) and value.value not in spec.labels:
            self.error(
                "E203",
                f"'{value.value}' is not a label of classifier '{spec.name}'",
                src,
                value.span,
                did_you_mean(value.value, spec.labels) or f"its labels: {', '.join(spec.labels)}",
            )

    def _type_error(
        self, attr: ast.Attr, attr_type: str, what: str, src: Source, span: Span
    ) -> None:
        self.error(
            "E201",
            f"'{attr.dotted}' is {_article(attr_type)} {attr_type}; it cannot be compared with {what}",
            src,
            span,
            type_hint(attr.dotted, attr_type),
        )

    def _expr(self, expr: ast.Expr, src: Source) -> None:
        if isinstance(expr, (ast.And, ast.Or)):
            for operand in expr.operands:
                self._expr(operand, src)
            return
        if isinstance(expr, ast.Not):
            self._expr(expr.operand, src)
            return
        t = self.attr_type(expr.attr, src)
        if t is None:
            return
        if isinstance(expr, ast.Compare):
            if expr.op in ("<", "<=", ">", ">="):
                if not (_num_kind(t) or t == DYNAMIC):
                    self.error(
                        "E202",
                        f"'{expr.op}' needs a number, and '{expr.attr.dotted}' is {_article(t)} {t}",
                        src,
                        expr.span,
                        "use == or in for strings" if t in (STRING, LABEL) else None,
                    )
                elif not isinstance(expr.value, ast.Num):
                    self._type_error(
                        expr.attr,
                        t if t != DYNAMIC else NUMBER,
                        _describe(expr.value),
                        src,
                        expr.value.span,
                    )
            elif not self._value_fits(t, expr.value):
                self._type_error(expr.attr, t, _describe(expr.value), src, expr.value.span)
            elif t == LABEL:
                self._label_check(expr.attr, expr.value, src)
            if t == NUMBER and isinstance(expr.value, ast.Num) and not 0 <= expr.value.value <= 1:
                self.error("E204", "a confidence lies in [0, 1]", src, expr.value.span)
        elif isinstance(expr, ast.In):
            kinds = {type(v) for v in expr.values}
            if len(kinds) > 1:
                self.error(
                    "E201",
                    "a list mixes values of different types",
                    src,
                    expr.span,
                    type_hint(expr.attr.dotted, t),
                )
            for v in expr.values:
                if not self._value_fits(t, v):
                    self._type_error(expr.attr, t, _describe(v), src, v.span)
                    break
                if t == LABEL:
                    self._label_check(expr.attr, v, src)
        elif isinstance(expr, (ast.Contains, ast.Matches)):
            if t not in (TEXT, STRING, DYNAMIC):
                op = "contains" if isinstance(expr, ast.Contains) else "matches"
                self.error(
                    "E202",
                    f"'{op}' reads text, and '{expr.attr.dotted}' is {_article(t)} {t}",
                    src,
                    expr.attr.span,
                )
            if isinstance(expr, ast.Contains):
                self._contains_target(expr, src)
            else:
                self._regex(expr.regex, src)
            if expr.attr.dotted == "prompt":
                self._reads_what_prompt_left(expr, src)
        elif isinstance(expr, ast.Truthy) and t not in (BOOL, DYNAMIC):
            hint = f"to test that it is given, write: has {expr.attr.dotted}"
            self.error(
                "E201",
                f"'{expr.attr.dotted}' is {_article(t)} {t}, not a bool; it cannot stand alone",
                src,
                expr.span,
                hint,
            )

    def _reads_what_prompt_left(self, expr: ast.Contains | ast.Matches, src: Source) -> None:
        """W013: `prompt` is the person's words now, without tool results and without
        `<system-reminder>` blocks; a test for their markup can no longer match there."""
        if isinstance(expr, ast.Matches):
            texts = [expr.regex.pattern]
        elif isinstance(expr.target, ast.Str):
            texts = [expr.target.value]
        elif isinstance(expr.target, ast.Ident):
            texts = list(self.policy.keywords.get(expr.target.name, ()))
        else:
            texts = [p.value for p in expr.target.phrases]
        found = next((m for m in PROMPT_LEFT_OUT if any(m in t.lower() for t in texts)), None)
        if found is not None:
            self.warn(
                "W013",
                f"'prompt' no longer holds tool results or <system-reminder> blocks of a "
                f"Messages API request, so a test for '{found}' there does not match",
                src,
                expr.span,
                "test text instead: it is the whole request, tool results and reminders included",
            )

    def _contains_target(self, expr: ast.Contains, src: Source) -> None:
        target = expr.target
        if isinstance(target, ast.Str):
            if not normalize_phrase(target.value):
                self.error("E113", "a phrase cannot be empty or only white space", src, target.span)
        elif isinstance(target, ast.Ident):
            if target.name not in self.policy.keywords:
                if ("keywords", target.name) not in self.policy.decl_spans and not (
                    self.imports_failed or ("keywords", target.name) in self._broken
                ):
                    self.error(
                        "E103",
                        f"unknown keyword set '{target.name}'",
                        src,
                        target.span,
                        did_you_mean(target.name, self.policy.keywords)
                        or f"declared sets: {', '.join(self.policy.keywords) or 'none'}",
                    )
            else:
                self.policy.used.add(("keywords", target.name))
        else:
            if not target.phrases:
                self.error("E113", "the phrase list is empty", src, expr.span)
            for phrase in target.phrases:
                if not normalize_phrase(phrase.value):
                    self.error(
                        "E113", "a phrase cannot be empty or only white space", src, phrase.span
                    )

    def _regex(self, regex: ast.Regex, src: Source) -> None:
        try:
            compiled = compile_regex(regex.pattern, regex.flags)
        except RegexError as e:
            hint = None
            if e.code == "E302":
                hint = "rewrite without it, or split the test into two rules"
            elif e.code == "E304":
                hint = "bound the repetition ({1,1000} -> {1,100}), or test a phrase instead"
            elif e.code == "E301":
                hint = REGEX_HINT
            self.error(e.code, str(e), src, regex.span, hint)
            return
        if compiled.search("") is not None:
            self.warn(
                "W007",
                "this regex matches the empty string, so it matches every text",
                src,
                regex.span,
                "a '*' or '?' that should be '+'?",
            )


# Markup of what `prompt` leaves out (request/messages.py): tool blocks and reminders.
PROMPT_LEFT_OUT = ("system-reminder", "tool_result", "tool_use")

REGEX_HINT = (
    "the syntax is RE2's (https://github.com/google/re2/wiki/Syntax): close every ( [ {, "
    "and escape ( ) [ ] { } . * + ? | \\ with a backslash to match them as written"
)


def type_hint(dotted: str, attr_type: str, setting: bool = False) -> str | None:
    """How a value of the attribute's type is written."""
    op = "=" if setting else "=="
    if attr_type in (INT, NUMBER):
        return (
            f"write a number without quotes: {dotted} {op if setting else '>'} 300 (or 60k, 1.5m)"
        )
    if attr_type in (STRING, LABEL):
        return f'write the value in double quotes: {dotted} {op} "..."'
    if attr_type == TEXT:
        if setting:
            return f'write the text in double quotes: {dotted} = "..."'
        return f'text is searched, not compared: {dotted} contains "..." or {dotted} matches /.../'
    if attr_type == BOOL:
        if setting:
            return f"write true or false: {dotted} = true"
        return f"a bool stands alone as a condition: {dotted}, or not {dotted}"
    return None
