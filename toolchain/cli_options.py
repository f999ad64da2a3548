"""The options `hqc compile` and `hqc search` share: one definition, one set of defaults
(`hqc.config.CompileConfig`'s), the same `--config hqc.yaml`.

Options come from `--config hqc.yaml` first, then from the command line, which wins.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click
from click.core import ParameterSource

from hqc.config import DEFAULT_LAMBDA, CompileConfig
from hqc.errors import ConfigError

_D = CompileConfig()

# command-line option name → CompileConfig field, for the options both commands take
SHARED_FIELDS: dict[str, str] = {
    "data": "data",
    "target": "target",
    "out": "out",
    "plan": "plan",
    "search_space": "search_space",
    "input_layout": "input_layout",
    "lam": "lambda_",
    "epochs": "epochs",
    "finetune_epochs": "finetune_epochs",
    "batch_size": "batch_size",
    "seed": "seed",
    "device": "device",
}

_SHARED: list[Callable[[Any], Any]] = [
    click.option("--data", default=None, help="NPZ with x (N, T, C, H, W), y; x_val/y_val for accuracy."),
    click.option("--target", default=_D.target, show_default=True, help="Cost table: built-in name, YAML path or entry point."),
    click.option("-o", "--out", default=None, help="Output folder (default build/<model stem>)."),
    click.option("--plan", default=None, type=click.Path(dir_okay=False), help="Use this plan.yaml instead of searching."),
    click.option("--search-space", default=None, type=click.Path(dir_okay=False), help="Search-space YAML (candidates, pins; docs/search.md)."),
    click.option("--input-layout", default=None, help="Where the model input keeps batch and time: BT… or TB…."),
    click.option("--lambda", "lam", type=float, default=None, help=f"Weight of the energy loss, >= 0 (default {DEFAULT_LAMBDA})."),
    click.option("--epochs", type=int, default=_D.epochs, show_default=True, help="Search epochs."),
    click.option("--finetune-epochs", type=int, default=_D.finetune_epochs, show_default=True, help="QAT epochs of the chosen plan."),
    click.option("--batch-size", type=int, default=_D.batch_size, show_default=True, help="Global batch size."),
    click.option("--seed", type=int, default=_D.seed, show_default=True),
    click.option("--device", default=_D.device, show_default=True, help="cpu, cuda or cuda:N."),
    click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                 help="hqc.yaml with any of these options (a compile's config.yaml works)."),
    click.option("--json", "as_json", is_flag=True, help="Print the stable JSON document instead of the summary."),
    click.option("--no-progress", is_flag=True, help="No progress output."),
]


def shared_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a command with the options compile and search share."""
    for opt in reversed(_SHARED):
        f = opt(f)
    return f


def build_config(ctx: click.Context, model: str | None, config_path: str | None,
                 opts: Mapping[str, Any], fields: Mapping[str, str]) -> CompileConfig:
    """`--config` file (or the defaults), then every option given on the command line."""
    cfg = CompileConfig.from_file(config_path) if config_path else CompileConfig()
    if model is not None:
        cfg.model = model
    for opt, fieldname in fields.items():
        if ctx.get_parameter_source(opt) is ParameterSource.COMMANDLINE:
            setattr(cfg, fieldname, opts[opt])
    cfg.validate("options")
    return cfg


def refuse_compile_only(cfg: CompileConfig, config_path: str | None, command: str) -> None:
    """ConfigError when a config file sets an option that only `hqc compile` has."""
    for name in ("stop_after", "verify_limit", "split"):
        if getattr(cfg, name) != getattr(_D, name):
            raise ConfigError(f"{config_path}:{name}: an option of hqc compile only, not of hqc {command}")


def _load_option_file(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """`--config FILE` of a command without a CompileConfig: the file's keys are the
    command's option names (`resolution_bits` or `resolution-bits`); they become the
    defaults, so the command line still wins. Unknown keys are one ConfigError."""
    if value is None:
        return None
    from hqc.yamlio import read_yaml

    data = read_yaml(value, ConfigError, "config") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{value}: expected a mapping of options")
    known: dict[str, str] = {}  # key (the long option's name, or the parameter's) → parameter
    for p in ctx.command.params:
        if isinstance(p, click.Option) and p.name not in ("config_path", "as_json"):
            longs = [o[2:].replace("-", "_") for o in p.opts if o.startswith("--")]
            for key in [*longs, p.name]:
                known[key] = p.name  # type: ignore[assignment]
    shown = sorted({o[2:].replace("-", "_") for p in ctx.command.params if isinstance(p, click.Option)
                    and p.name not in ("config_path", "as_json") for o in p.opts if o.startswith("--")})
    given: dict[str, Any] = {}
    for key, v in data.items():
        name = str(key).replace("-", "_")
        if name not in known:
            raise ConfigError(f"{value}:{key}: unknown option of hqc {ctx.info_name} (known: {', '.join(shown)})")
        given[known[name]] = v
    ctx.default_map = {**(ctx.default_map or {}), **given}
    return value


def config_file_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--config FILE` for commands whose options have no config schema of their own
    (lower, verify, cost): a YAML mapping of option names to values."""
    return click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                        is_eager=True, callback=_load_option_file,
                        help="YAML mapping of this command's options (the command line wins).")(f)
