"""Reading pytest's JUnit XML back into node ids and outcomes, and comparing two runs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

PASSED, SKIPPED, FAILED = "passed", "skipped", "failed"
_RANK = {PASSED: 0, SKIPPED: 1, FAILED: 2}


@dataclass(frozen=True)
class Outcome:
    status: str  # PASSED, SKIPPED or FAILED (a failure or an error, in any phase)
    message: str = ""  # the first line of the failure or error, if any


def read(path: Path, tree: Path) -> dict[str, Outcome]:
    """Every test case of a JUnit XML file, by pytest node id (worst outcome per id)."""
    outcomes: dict[str, Outcome] = {}
    for case in ET.parse(path).iter("testcase"):
        node_id = node_id_of(case.get("classname", ""), case.get("name", ""), tree)
        outcome = _outcome(case)
        seen = outcomes.get(node_id)
        if seen is None or _RANK[outcome.status] > _RANK[seen.status]:
            outcomes[node_id] = outcome
    return outcomes


def node_id_of(classname: str, name: str, tree: Path) -> str:
    """``tests.client.test_auth.TestX`` + ``test_y[1]`` -> ``tests/client/test_auth.py::TestX::test_y[1]``.

    The module is the longest dotted prefix that is a .py file in the tree. A
    collection error has no classname and the module's dotted path as name.
    """
    parts = classname.split(".") if classname else name.split(".")
    rest = [name] if classname else []
    for end in range(len(parts), 0, -1):
        if tree.joinpath(*parts[:end]).with_suffix(".py").is_file():
            module = "/".join(parts[:end]) + ".py"
            return "::".join([module, *parts[end:], *rest])
    return "::".join([*parts, *rest])


def _outcome(case: ET.Element) -> Outcome:
    for tag in ("failure", "error"):
        element = case.find(tag)
        if element is not None:
            text = element.get("message") or element.text or tag
            return Outcome(FAILED, text.strip().splitlines()[0] if text.strip() else tag)
    if case.find("skipped") is not None:
        return Outcome(SKIPPED)
    return Outcome(PASSED)


@dataclass
class Comparison:
    passed_plain: int = 0
    passed_wrapped: int = 0
    #: Passed plain, failed (or missing) wrapped, not allowed: node id -> wrapped message.
    regressions: dict[str, str] = field(default_factory=dict)
    #: Passed plain, failed wrapped, allowed: node id -> the allow-list's reason.
    allowed: dict[str, str] = field(default_factory=dict)
    #: Failed plain, passed wrapped (worth a look: flaky, or order-dependent).
    fixed: list[str] = field(default_factory=list)


def compare(
    plain: Mapping[str, Outcome],
    wrapped: Mapping[str, Outcome],
    allowed: Callable[[str], str | None],
) -> Comparison:
    result = Comparison(
        passed_plain=sum(o.status == PASSED for o in plain.values()),
        passed_wrapped=sum(o.status == PASSED for o in wrapped.values()),
    )
    for node_id, before in sorted(plain.items()):
        after = wrapped.get(node_id, Outcome(FAILED, "missing from the wrapped run"))
        if before.status == PASSED and after.status == FAILED:
            reason = allowed(node_id)
            if reason is None:
                result.regressions[node_id] = after.message
            else:
                result.allowed[node_id] = reason
        elif before.status == FAILED and after.status == PASSED:
            result.fixed.append(node_id)
    return result
