"""Safe YAML for every file hqc reads: `yaml.SafeLoader` (no Python objects) that also
refuses anchors and aliases, so an alias bomb ("billion laughs") cannot make a loader
walk an exponential structure. Files that need repetition can simply repeat values."""

from __future__ import annotations

from typing import Any

import yaml


class AliasError(yaml.YAMLError):
    def __init__(self, line: int) -> None:
        super().__init__(f"YAML anchors and aliases are not allowed (line {line})")
        self.line = line


class _NoAliasLoader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise AliasError(self.peek_event().start_mark.line + 1)
        event = self.peek_event()
        if getattr(event, "anchor", None):
            raise AliasError(event.start_mark.line + 1)
        return super().compose_node(parent, index)


def safe_load(text: str) -> Any:
    """Parse YAML text with the safe loader, refusing anchors/aliases (AliasError)."""
    return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
