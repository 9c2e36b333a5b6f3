"""Load Sigma rule files: detection rules, correlation rules and meta-filters.

Never raises on a bad file: every problem becomes a LoadIssue with file, line and reason, and
the other rules still load. Files named `*.tests.yml` are rule tests (see testing.py), not rules.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

from detectors.common.durations import parse_duration
from detectors.common.severity import LEVELS
from detectors.sigma import ruledocs
from detectors.sigma.compile import CompileError, compile_detection
from detectors.sigma.mapping import FieldMappings, load_mappings
from detectors.sigma.model import (
    CORRELATION_TYPES,
    STATUSES,
    CorrelationRule,
    LoadIssue,
    LoadResult,
    MetaFilter,
    RuleMeta,
    SigmaRule,
)
from detectors.sigma.rulefiles import read_rule_text, rule_file_names

_CONDITION_OPS = ("gt", "gte", "lt", "lte", "eq", "neq")
_TAG_RE = re.compile(r"^[a-z0-9_\-]+(\.[a-z0-9_\-.]+)+$")
_TAGS_OK: dict[str, bool] = {}


def parse_timespan(text: Any) -> float:
    """A Sigma `timespan` (one duration syntax everywhere: detectors.common.durations)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ValueError(f"timespan {text!r} is not <number><s|m|h|d|w>") from exc


def line_of(text: str, doc_index: int, path: tuple[Any, ...]) -> int:
    """1-based line of the YAML node at `path` in document `doc_index` (best effort).

    Composes the file again, so call it only to report a problem, never for every rule."""
    from detectors.sigma import yamlsafe  # PyYAML's node trees: only to report a problem

    try:
        node = yamlsafe.compose_documents(text)[doc_index]
    except (ruledocs.RuleYAMLError, IndexError):
        return 0
    return _node_line(node, path)


def _node_line(node: Any, path: tuple[Any, ...]) -> int:
    import yaml

    line = node.start_mark.line + 1 if node is not None else 0
    for step in path:
        if isinstance(node, yaml.MappingNode):
            hit = next(((k, v) for k, v in node.value if k.value == str(step)), None)
            if hit is None:
                break
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int) and step < len(node.value):
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _strings(v: Any) -> list[Any]:
    if v is None:
        return []
    return [str(x) for x in (v if isinstance(v, list) else [v])]


def _meta(doc: dict[str, Any], path: str, line: int, issues: list[Any], label: str) -> RuleMeta:
    rid = doc.get("id")
    if rid is None:
        # deterministic id for id-less rules (allowed by the spec) so dedup keys stay stable
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"socpipe:{path}:{doc.get('title')}"))
    level = str(doc.get("level", "medium")).lower()
    if level not in LEVELS:
        issues.append(("warning", ("level",), f"unknown level {level!r}; using medium"))
        level = "medium"
    status = str(doc.get("status", "experimental")).lower()
    if status not in STATUSES:
        issues.append(("warning", ("status",), f"unknown status {status!r}"))
    tags = _strings(doc.get("tags"))
    for t in tags:
        ok = _TAGS_OK.get(t)
        if ok is None:  # rules repeat a few hundred tags (attack.execution...): each matched once
            ok = _TAGS_OK[t] = _TAG_RE.match(t) is not None
            if len(_TAGS_OK) > 20_000:
                _TAGS_OK.clear()
        if not ok:
            issues.append(("warning", ("tags",), f"tag {t!r} is not namespace.value lower-case"))
    title = doc.get("title")
    if not isinstance(title, str) or not title.strip():
        raise CompileError("missing 'title'", ())
    return RuleMeta(
        id=str(rid),
        title=title,
        name=doc.get("name"),
        description=str(doc.get("description", "")),
        level=level,
        status=status,
        author=str(doc.get("author", "")),
        tags=tags,
        references=_strings(doc.get("references")),
        falsepositives=_strings(doc.get("falsepositives")),
        fields=_strings(doc.get("fields")),
        path=path,
        line=line,
    )


def _logsource(doc: dict[str, Any]) -> dict[str, Any]:
    ls = doc.get("logsource")
    if not isinstance(ls, dict) or not ls:
        raise CompileError("missing 'logsource' (a map with product/category/service)", ("logsource",))
    return {k: str(v).lower() for k, v in ls.items() if k in ("product", "category", "service") and v is not None}


def _correlation(doc: dict[str, Any], meta: RuleMeta) -> CorrelationRule:
    c = doc.get("correlation")
    if not isinstance(c, dict):
        raise CompileError("'correlation' must be a map", ("correlation",))
    ctype = c.get("type")
    if ctype not in CORRELATION_TYPES:
        raise CompileError(f"correlation type {ctype!r} is not one of {CORRELATION_TYPES}", ("correlation", "type"))
    refs = _strings(c.get("rules"))
    if not refs:
        raise CompileError("correlation needs 'rules'", ("correlation", "rules"))
    try:
        timespan = parse_timespan(c.get("timespan"))
    except ValueError as exc:
        raise CompileError(str(exc), ("correlation", "timespan")) from None
    group_by = _strings(c.get("group-by"))
    cond = c.get("condition") or {}
    if not isinstance(cond, dict):
        raise CompileError("correlation condition must be a map like {gte: 5}", ("correlation", "condition"))
    ops = {k: cond[k] for k in _CONDITION_OPS if k in cond}
    unknown = set(cond) - set(_CONDITION_OPS) - {"field"}
    if unknown:
        raise CompileError(f"unknown condition keys {sorted(unknown)}", ("correlation", "condition"))
    for k, v in ops.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise CompileError(f"condition {k} needs a number", ("correlation", "condition"))
    fields = _strings(cond.get("field"))
    if ctype in ("event_count", "value_count", "value_sum", "value_avg", "value_percentile") and not ops:
        raise CompileError(f"{ctype} needs a condition (gte/gt/lt/lte/eq/neq)", ("correlation", "condition"))
    if ctype.startswith("value_") and not fields:
        raise CompileError(f"{ctype} needs condition.field", ("correlation", "condition"))
    aliases = c.get("aliases") or {}
    if not isinstance(aliases, dict) or not all(isinstance(v, dict) for v in aliases.values()):
        raise CompileError("aliases must map alias -> {rule: field}", ("correlation", "aliases"))
    generate = doc.get("generate", c.get("generate", False))
    return CorrelationRule(
        meta=meta,
        type=ctype,
        rule_refs=refs,
        group_by=group_by,
        timespan=timespan,
        condition=ops,
        value_fields=fields,
        aliases={str(a): {str(k): str(v) for k, v in m.items()} for a, m in aliases.items()},
        generate=bool(generate),
    )


def _load_document(
    doc: Any, text: Any, index: Any, line: Any, path: Any, mappings: Any, placeholders: Any, result: Any, filters: Any
) -> None:
    label = doc.get("title", "") if isinstance(doc, dict) else ""
    pending: list[Any] = []
    try:
        if not isinstance(doc, dict):
            raise CompileError("a rule document must be a YAML map", ())
        meta = _meta(doc, path, line, pending, label)
        if "correlation" in doc:
            rule: SigmaRule | CorrelationRule | None = _correlation(doc, meta)
        elif "filter" in doc:
            ls = _logsource(doc)
            body = doc["filter"]
            if not isinstance(body, dict):
                raise CompileError("'filter' must be a map", ("filter",))
            det = {k: v for k, v in body.items() if k != "rules"}
            compiled = compile_detection(det, mappings.resolver(ls), placeholders)
            filters.append(MetaFilter(meta, ls, _strings(body.get("rules")), compiled.match))
            rule = None
        elif "detection" in doc:
            ls = _logsource(doc)
            compiled = compile_detection(doc["detection"], mappings.resolver(ls), placeholders)
            rule = SigmaRule(
                meta=meta, logsource=ls, match=compiled.match, need_of=compiled.get_index, detection=doc["detection"]
            )
        else:
            raise CompileError("neither 'detection', 'correlation' nor 'filter'", ())
    except CompileError as exc:
        result.errors.append(LoadIssue(path, line_of(text, index, exc.path), label, str(exc)))
        return
    except RecursionError:
        result.errors.append(LoadIssue(path, 0, label, "rule nests too deeply"))
        return
    if pending:
        composed = _Composed(text, index)
        for sev, p, msg in pending:
            (result.warnings if sev == "warning" else result.errors).append(
                LoadIssue(path, composed.line(p), label, msg, sev)
            )
    if rule is not None:
        result.rules.append(rule)


def load_rules(
    paths: Any,
    mappings: FieldMappings | None = None,
    placeholders: dict[str, Any] | None = None,
) -> LoadResult:
    """Load every rule under `paths` (files or directories). Never raises on a bad rule."""
    mappings = mappings if mappings is not None else load_mappings()
    placeholders = placeholders or {}
    result = LoadResult()
    filters: list[MetaFilter] = []
    cache = ruledocs.document_cache()
    for f in rule_file_names(paths):
        result.files += 1
        try:
            text = read_rule_text(f)
            docs, lines = cache.documents(text)
        except (OSError, UnicodeDecodeError) as exc:
            result.documents += 1
            result.errors.append(LoadIssue(f, 0, "", f"cannot read: {exc}"))
            continue
        except ruledocs.RuleYAMLError as exc:
            result.documents += 1
            result.errors.append(LoadIssue(f, exc.line, "", exc.message))
            continue
        for i, doc in enumerate(docs):
            if doc is None:
                continue
            result.documents += 1
            line = lines[i] if i < len(lines) else 0
            _load_document(doc, text, i, line, f, mappings, placeholders, result, filters)
    cache.save()
    _link(result, filters)
    result.filters = filters
    return result


class _Composed:
    """Lines of one document's nodes, composed at most once, and only when a problem is reported."""

    def __init__(self, text: str, index: int) -> None:
        self.text, self.index = text, index
        self.node = None
        self.failed = False

    def line(self, path: tuple[Any, ...]) -> int:
        if self.node is None and not self.failed:
            from detectors.sigma import yamlsafe

            try:
                self.node = yamlsafe.compose_documents(self.text)[self.index]
            except (ruledocs.RuleYAMLError, IndexError):
                self.failed = True
        return 0 if self.node is None else _node_line(self.node, path)


def _link(result: LoadResult, filters: list[Any]) -> None:
    """Resolve correlation references (id or name), reject cycles, apply meta-filters."""
    by_ref: dict[str, Any] = {}
    for r in result.rules:
        by_ref[r.meta.id] = r
        if r.meta.name:
            by_ref.setdefault(r.meta.name, r)
    dup: dict[str, Any] = {}
    for r in result.rules:
        if r.meta.id in dup:
            result.warnings.append(
                LoadIssue(
                    r.meta.path,
                    r.meta.line,
                    r.meta.title,
                    f"duplicate rule id {r.meta.id} (also in {dup[r.meta.id]})",
                    "warning",
                )
            )
        dup[r.meta.id] = r.meta.path
    bad: set[Any] = set()
    for r in result.rules:
        if isinstance(r, CorrelationRule):
            missing = [ref for ref in r.rule_refs if ref not in by_ref]
            if missing:
                result.errors.append(
                    LoadIssue(r.meta.path, r.meta.line, r.meta.title, f"correlation refers to unknown rules {missing}")
                )
                bad.add(r.meta.id)
                continue
            r.rules = [by_ref[ref].meta.id for ref in r.rule_refs]
    ids = {r.meta.id: r for r in result.rules}

    def cyclic(rid: Any, seen: Any) -> bool:
        r = ids.get(rid)
        if not isinstance(r, CorrelationRule):
            return False
        if rid in seen:
            return True
        return any(cyclic(x, seen | {rid}) for x in r.rules)

    for r in result.rules:
        if isinstance(r, CorrelationRule) and r.meta.id not in bad and cyclic(r.meta.id, set()):
            result.errors.append(
                LoadIssue(r.meta.path, r.meta.line, r.meta.title, "correlation chain refers to itself")
            )
            bad.add(r.meta.id)
    # a correlation depending on a rejected correlation is rejected too
    changed = True
    while changed:
        changed = False
        for r in result.rules:
            if isinstance(r, CorrelationRule) and r.meta.id not in bad and any(x in bad for x in r.rules):
                bad.add(r.meta.id)
                changed = True
                result.errors.append(
                    LoadIssue(r.meta.path, r.meta.line, r.meta.title, "refers to a correlation that failed to load")
                )
    result.rules = [r for r in result.rules if r.meta.id not in bad]
    for f in filters:
        for ref in f.rule_refs:
            target = by_ref.get(ref)
            if not isinstance(target, SigmaRule):
                result.warnings.append(
                    LoadIssue(f.meta.path, f.meta.line, f.meta.title, f"filter refers to unknown rule {ref}", "warning")
                )
                continue
            base, exclude = target.match, f.match
            target.match = _without(base, exclude)


def _without(
    base: Callable[[dict[str, Any]], bool], exclude: Callable[[dict[str, Any]], bool]
) -> Callable[[dict[str, Any]], bool]:
    """A rule's match with a filter's events taken out."""

    def match(ev: dict[str, Any]) -> bool:
        return base(ev) and not exclude(ev)

    return match
