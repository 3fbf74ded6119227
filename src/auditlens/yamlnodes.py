"""Reading YAML files whose errors must name the file, the line and the field.

PyYAML's node tree keeps each value's position, so validation can say *where* a
value is wrong. Alert rules and report frameworks both read their files through
:class:`NodeReader`.

Example:
    >>> docs = compose_documents("a: 1\\nb: [x, y]\\n", "demo.yaml", YamlFileError)
    >>> reader = NodeReader("demo.yaml", YamlFileError)
    >>> keys = reader.mapping(docs[0], "", ("a", "b"))
    >>> reader.texts(keys["b"][1], "b")
    ['x', 'y']
    >>> reader.mapping(docs[0], "", ("a",))
    Traceback (most recent call last):
    ...
    auditlens.errors.YamlFileError: demo.yaml:2: b: unknown key; expected one of a
"""

from __future__ import annotations

from typing import Any

import yaml

from auditlens.errors import YamlFileError

__all__ = ["NodeReader", "YamlFileError", "compose_documents", "plain"]


def plain(node: yaml.Node | None) -> Any:
    """The Python value of a node."""
    return yaml.safe_load(yaml.serialize(node)) if node is not None else None


def compose_documents(
    text: str, source: str, error: type[YamlFileError] = YamlFileError
) -> list[yaml.Node]:
    """The non-empty documents of a YAML text as node trees (syntax errors with their line)."""
    try:
        return [d for d in yaml.compose_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise error(
            source, mark.line + 1 if mark else None, "yaml", str(getattr(exc, "problem", exc))
        ) from None


class NodeReader:
    """Typed access to YAML nodes; every failure is ``error(source, line, field, message)``."""

    def __init__(self, source: str, error: type[YamlFileError] = YamlFileError) -> None:
        self.source = source
        self.error = error

    def fail(self, node: yaml.Node | None, field_name: str, message: str) -> YamlFileError:
        """The error to raise for ``node`` (its line) and ``field_name``."""
        line = node.start_mark.line + 1 if node is not None else None
        return self.error(self.source, line, field_name, message)

    def mapping(
        self, node: yaml.Node, field_name: str, allowed: tuple[str, ...]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """A mapping's ``key → (key node, value node)``; unknown keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, field_name or "document", "must be a mapping of keys to values")
        out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for k, v in node.value:
            key = str(k.value)
            if key not in allowed:
                raise self.fail(
                    k,
                    f"{field_name}.{key}" if field_name else key,
                    f"unknown key; expected one of {', '.join(allowed)}",
                )
            out[key] = (k, v)
        return out

    def text(self, node: yaml.Node, field_name: str) -> str:
        """A non-empty scalar as text."""
        value = plain(node)
        if (
            not isinstance(value, str | int | float)
            or isinstance(value, bool)
            or str(value).strip() == ""
        ):
            raise self.fail(node, field_name, "must be a non-empty text")
        return str(value).strip()

    def texts(self, node: yaml.Node, field_name: str) -> list[str]:
        """One text or a list of texts."""
        if isinstance(node, yaml.SequenceNode):
            return [self.text(item, field_name) for item in node.value]
        return [self.text(node, field_name)]

    def sequence(self, node: yaml.Node, field_name: str) -> list[yaml.Node]:
        """The items of a list."""
        if not isinstance(node, yaml.SequenceNode):
            raise self.fail(node, field_name, "must be a list")
        return list(node.value)
