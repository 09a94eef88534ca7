"""What hovering over a name shows (Markdown).

A rule: its tier and model, the effective `max_tokens`, the escalation ladder, the inline
tests that cover it and a request it decides (its witness, found by the analysis). A tier:
model and prices. A keyword set: its phrases. A classifier: tier and labels. An attribute:
its type and meaning. A trigger: when it fires.
"""

from __future__ import annotations

import json

from ..decision import TRIGGERS, Tier
from ..request.attributes import ATTRIBUTES, family_of, lookup
from ..syntax import ast
from .index import Occurrence, import_target
from .snapshot import Snapshot

# A witness is searched for on hover; past this many rules the search is left to `explain`
# so a hover never stalls the editor.
WITNESS_RULE_LIMIT = 400


def hover_text(snap: Snapshot, occ: Occurrence) -> str | None:
    decl = snap.index.definition(occ)
    if occ.kind == "rule":
        return _rule(snap, occ.name, decl)
    if occ.kind == "tier":
        return _tier(snap, occ.name, decl)
    if occ.kind == "keywords" and decl is not None:
        assert isinstance(decl.node, ast.KeywordsDecl)
        phrases = ", ".join(f'"{p.value}"' for p in decl.node.phrases)
        return f"**keywords {occ.name}**: {len(decl.node.phrases)} phrases\n\n{phrases}" + _where(
            decl
        )
    if occ.kind == "classifier" and decl is not None:
        assert isinstance(decl.node, ast.ClassifierDecl)
        node = decl.node
        labels = ", ".join(f'"{label.value}"' for label in node.labels)
        return (
            f"**classifier {occ.name}** asks tier `{node.tier.name}`\n\n"
            f"labels: {labels}\n\nread as `{occ.name}.label` (a label) and "
            f"`{occ.name}.confidence` (a number in [0, 1])" + _where(decl)
        )
    if occ.kind == "attribute":
        return _attribute(snap, occ.name)
    if occ.kind == "trigger":
        trigger = TRIGGERS.get(occ.name)
        if trigger is None:
            return None
        return f"**escalate on {trigger.spelled}**: fires when {trigger.doc}"
    if occ.kind == "import":
        target = import_target(occ)
        return f"**import** `{target}`" if target is not None else None
    return None


def _where(decl: Occurrence | None) -> str:
    if decl is None:
        return ""
    line, col = decl.source.line_col(decl.span.start)
    return f"\n\ndeclared at `{decl.source.name}:{line}:{col}`"


def _price(tier: Tier) -> str:
    out = f"input ${tier.input_price:g} / output ${tier.output_price:g} per million tokens"
    if tier.max_tokens is not None:
        out += f", max_tokens {tier.max_tokens}"
    return out


def _tier(snap: Snapshot, name: str, decl: Occurrence | None) -> str | None:
    if snap.policy is not None:
        for i, tier in enumerate(snap.policy.tiers):
            if tier.name == name:
                place = f"rung {i + 1} of {len(snap.policy.tiers)} on the ladder"
                return f"**tier {name}** = `{tier.model}`\n\n{_price(tier)}\n\n{place}" + _where(
                    decl
                )
    if decl is None:
        return None
    assert isinstance(decl.node, ast.TierDecl)
    props = ", ".join(f"{p.name.name} {p.value.text or p.value.value}" for p in decl.node.props)
    return f"**tier {name}** = `{decl.node.model.value}`\n\n{props}" + _where(decl)


def _rule(snap: Snapshot, name: str, decl: Occurrence | None) -> str | None:
    policy = snap.policy
    if policy is None:
        if decl is None:
            return None
        return f"**rule {name}**\n\n(the policy has errors: fix them to see where it routes)"
    try:
        index = policy.rule_index(name)
    except KeyError:
        return None
    decision = policy.decisions[index]
    head = "**default**" if name == "default" else f"**rule {name}**"
    lines = [f"{head} → `{decision.tier}` (`{decision.model}`)"]
    cap = decision.max_tokens
    lines.append(f"max_tokens: {cap if cap is not None else 'the caller’s'}")
    if decision.escalation.max_steps == 0 or not decision.ladder:
        lines.append("escalation: none (the top tier, or `escalate never`)")
    else:
        ladder = " → ".join(t.name for t in decision.ladder)
        steps = decision.escalation.max_steps
        lines.append(f"ladder: {ladder}" + (f" (at most {steps} steps)" if steps else ""))
    covering = [r.test.name for r in snap.results if r.decision.rule == name]
    if covering:
        lines.append("covered by inline test " + ", ".join(f'"{t}"' for t in covering))
    else:
        lines.append("**not covered** by any inline test")
    lines.append(_witness(snap, name))
    return "\n\n".join(lines) + _where(decl)


def _witness(snap: Snapshot, name: str) -> str:
    from ..analysis import AnalysisTooLarge, why_no_witness, witness

    policy = snap.policy
    assert policy is not None
    if len(policy.rules) > WITNESS_RULE_LIMIT:
        return f"witness: run `policyroute explain {snap.source.name} --rule {name}`"
    try:
        found = witness(policy, name)
    except AnalysisTooLarge:
        return "witness: the policy is too large to analyse"
    if found is None:
        return why_no_witness(policy, name)
    return "a request it decides:\n```json\n" + json.dumps(found, indent=2) + "\n```"


def _attribute(snap: Snapshot, dotted: str) -> str | None:
    head, _, field = dotted.partition(".")
    decl = snap.index.decls.get(("classifier", head))
    if decl is not None:
        assert isinstance(decl.node, ast.ClassifierDecl)
        if field == "label":
            labels = ", ".join(f'"{label.value}"' for label in decl.node.labels)
            return f"**{dotted}**: label\n\nclassifier `{head}`'s answer, one of {labels}; missing when the classifier fails"
        if field == "confidence":
            return f"**{dotted}**: number in [0, 1]\n\nclassifier `{head}`'s confidence; 0 when it fails"
        return None
    info = lookup(dotted)
    if info is None:
        return None
    if dotted in ATTRIBUTES:
        return f"**{dotted}**: {info.type}\n\n{info.doc}"
    family = family_of(dotted)
    kind = (family.doc_type or family.type) if family is not None else info.type
    if kind == "dynamic":
        kind = "string, number or bool"
    return f"**{dotted}**: {kind}\n\n{family.doc if family is not None else info.doc}"
