"""Safe YAML for every file hqc reads: `yaml.SafeLoader` (no Python objects) that also
refuses anchors and aliases, so an alias bomb ("billion laughs") cannot make a loader
walk an exponential structure. Files that need repetition can simply repeat values."""

from __future__ import annotations

from pathlib import Path
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


def parse_yaml(text: str, origin: str, error: type[Exception]) -> Any:
    """YAML text → data, or `error` with one line naming `origin` and the place: the one
    error ladder of every YAML hqc reads (plans, search spaces, configs, cost tables)."""
    try:
        return safe_load(text)
    except AliasError as e:
        raise error(f"{origin}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(e, "problem", None) or type(e).__name__).split())
        raise error(f"{origin}: not valid YAML{where}: {problem}") from None


def read_text(path: str | Path, error: type[Exception], what: str, missing_hint: str = "") -> str:
    """A text file hqc reads (YAML, report.json) → its text; `what` names the kind of file
    in the messages ("plan", "cost table", "report", …). Missing, unreadable and non-UTF-8
    files are one line each; `missing_hint` follows the missing-file message."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{p}: no such {what} file{missing_hint}") from None
    except IsADirectoryError:
        raise error(f"{p}: is a folder, not a {what} file") from None
    except UnicodeDecodeError:
        raise error(f"{p}: not UTF-8 text") from None
    except OSError as e:
        raise error(f"{p}: cannot read {what} ({e.strerror or e})") from None


def read_yaml(path: str | Path, error: type[Exception], what: str) -> Any:
    """A YAML file → data (`read_text`, then `parse_yaml`)."""
    return parse_yaml(read_text(path, error, what), str(path), error)
