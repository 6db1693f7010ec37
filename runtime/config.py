"""One config system: pydantic models that refuse unknown keys, one loader, and command-line options
derived from a model's fields, so a stage run alone takes exactly the settings the config file gives
it (and the defaults are written once, on the field)."""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from runtime.cli import BadInput

C = TypeVar("C", bound=BaseModel)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def load_config(model: type[C], source: Path | str | dict, where: str | None = None) -> C:
    """`model` from a JSON file or an already-read dict; a bad key or value is BadInput naming it."""
    if isinstance(source, dict):
        data, where = source, where or "config"
    else:
        data, where = read_json(source), where or str(source)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise BadInput(f"{where}: {describe(e, model)}") from None


def read_json(path: Path | str) -> dict:
    """A config file's JSON; a missing or malformed file is BadInput."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadInput(f"config {path} not found") from None
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{path}: {e}") from None


def describe(e: ValidationError, model: type[BaseModel]) -> str:
    err = e.errors()[0]
    loc = ".".join(str(x) for x in err["loc"]) or "config"
    if err["type"] == "extra_forbidden":
        owner = model
        for part in err["loc"][:-1]:
            owner = _model_of(owner.model_fields[str(part)].annotation) or owner
        return f"unknown key {loc!r}; known: {sorted(owner.model_fields)}"
    return f"{loc}: {err['msg']}"


def _model_of(annotation) -> type[BaseModel] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


_SCALARS = (int, float, str, Path)


def _scalar(annotation) -> type | None:
    """int/float/str/Path for a field the command line can set (`T` or `T | None`), else None."""
    if annotation in _SCALARS:
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 and args[0] in _SCALARS else None
    return None


def add_config_arguments(p: argparse.ArgumentParser, model: type[BaseModel], only: tuple[str, ...] | None = None,
                         overrides_only: bool = False) -> None:
    """`--field-name` for each scalar/bool field of `model` (default and help from the field). With
    `overrides_only`, an option not given stays out of the namespace, so that it does not override a
    config file's value with the default (see `overrides`)."""
    for name, f in model.model_fields.items():
        if only is not None and name not in only:
            continue
        flag = "--" + name.replace("_", "-")
        helptext = f"{f.description + ' ' if f.description else ''}(default: {f.default})"
        default = argparse.SUPPRESS if overrides_only else f.default
        if f.annotation is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=helptext)
        elif (kind := _scalar(f.annotation)) is not None:
            p.add_argument(flag, type=kind, default=default, help=helptext)


def overrides(base: C, args: argparse.Namespace) -> C:
    """`base` (e.g. from a config file) with the options given on the command line set on it."""
    given = {name: getattr(args, name) for name in type(base).model_fields if hasattr(args, name)}
    try:
        return type(base).model_validate({**base.model_dump(), **given})
    except ValidationError as e:
        raise option_error(e) from None


def config_from_args(model: type[C], args: argparse.Namespace) -> C:
    """`model` from the options add_config_arguments added (the others keep their defaults)."""
    try:
        return model(**{name: getattr(args, name) for name in model.model_fields if hasattr(args, name)})
    except ValidationError as e:
        raise option_error(e) from None


def option_error(e: ValidationError) -> BadInput:
    """A model's validation error as the command-line option it came from."""
    err = e.errors()[0]
    if not err["loc"]:   # a check across fields: its message names them
        return BadInput(err["msg"])
    return BadInput(f"--{str(err['loc'][0]).replace('_', '-')}: {err['msg']}")
