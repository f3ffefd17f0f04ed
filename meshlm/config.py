"""One configuration mechanism: dataclasses whose fields carry their help text.

A configuration (``BuildConfig`` of ``meshlm build-data``, ``TrainConfig`` of ``meshlm train``)
is a dataclass declared with :func:`setting` fields. Everything else is derived from it:

- the command-line options (:mod:`meshlm.cli.options` builds typer options from the fields:
  name, type, default and help; a field's ``flag`` / ``short`` metadata keeps an established
  option name such as ``--family`` or ``-j``);
- YAML recipes (:func:`read_yaml`): a mapping read into the same dataclass, every value converted
  by :func:`coerce`; an unknown key is refused in one line naming the file, the line and the key,
  with the closest field name when there is one.

Values given as text (a YAML scalar, a command-line word) are converted by :func:`coerce`, the
only converter: ``none``/``null``/``~`` for an optional field; ``true``/``false`` (and
yes/no/on/off/1/0) for a flag; a tuple from comma-separated items (``0,90,180,270``) or a YAML
flow list (``[0, 90]``); a list of strings from one item or a YAML flow list
(``[q_proj, v_proj]``). Only the standard library is needed, plus pyyaml to read a recipe or a
flow list.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import field
from pathlib import Path
from typing import Any

from meshlm.errors import MeshlmError, require


class ConfigError(MeshlmError, ValueError):
    """A recipe or an option is invalid (unknown key, bad value or type, inconsistent values)."""


NULLS = ("none", "null", "~")
TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


def setting(default: Any = dataclasses.MISSING, help: str = "", **cli: Any) -> Any:
    """A dataclass field with its help text (``metadata["help"]``).

    ``default`` may be a list or dict (copied per instance); leave it out for a required field
    (a required command-line option). ``cli`` goes into the metadata for the option generator:
    ``flag="--family"`` (the long option name when it is not the field name), ``short="-j"``,
    ``cli=False`` (not an option: set by the program, e.g. the recipe path).
    """
    meta = {"help": help, **cli}
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def field_help(cls: type) -> dict[str, str]:
    """Field name -> help text, in declaration order."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type (``int | None`` etc.; annotations may be strings)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """``X | None`` -> ``(X, True)``; any other type -> ``(hint, False)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(args) < len(typing.get_args(hint)):
            return args[0], True
    return hint, False


def suggest(name: str, known: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def from_mapping(cls: type, values: dict[str, Any], where: str = "") -> Any:
    """Build ``cls`` from a mapping of field name -> value (text or typed), converting each value
    with :func:`coerce`. ``where`` (e.g. ``"r.yaml:3"``-less file name) prefixes error messages.

    Raises :class:`ConfigError` for an unknown key (naming the closest field) or a bad value.
    """
    types_ = field_types(cls)
    prefix = f"{where}: " if where else ""
    for key in values:
        if key not in types_:
            raise ConfigError(f"{prefix}unknown config key '{key}'{suggest(str(key), types_)}")
    return cls(**{k: coerce(f"{prefix}{k}", v, types_[k]) for k, v in values.items()})


def read_yaml(cls: type, path: str | Path) -> dict[str, Any]:
    """Read a YAML recipe for ``cls``: a mapping whose keys are field names.

    Returns the mapping, values converted to the field types. Raises :class:`ConfigError`, in
    one line naming the file (and the line, for an unknown key), for a missing file, bad YAML,
    a non-mapping, an unknown key (with the closest field name) or a bad value.
    """
    yaml = require("yaml", "data", "reading recipes")
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    text = path.read_text()
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from None
    loaded = {} if loaded is None else loaded
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping of key: value")
    types_ = field_types(cls)
    for key in loaded:
        if key not in types_:
            line = _key_line(yaml, text, key)
            where = f"{path}:{line}" if line else str(path)
            raise ConfigError(f"{where}: unknown config key '{key}'{suggest(str(key), types_)}")
    return {k: coerce(f"{path}: {k}", v, types_[k]) for k, v in loaded.items()}


def _key_line(yaml, text: str, key: Any) -> int | None:
    """1-based line of top-level ``key`` in YAML ``text`` (None when it cannot be told)."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:  # pragma: no cover - safe_load already parsed it
        return None
    for k, _ in getattr(node, "value", []):
        if getattr(k, "value", None) == str(key):
            return k.start_mark.line + 1
    return None


def coerce(label: str, value: Any, hint: Any) -> Any:
    """Convert ``value`` (text from a command line or YAML, or an already typed value) to the
    field type ``hint``: bool, int, float, str, ``X | None``, ``list[str]``, ``tuple[int, ...]``,
    ``tuple[float, float, float]``. ``label`` names the value in the error message.

    Raises :class:`ConfigError` ``"<label>: expected <type>, got <value>"``.
    """
    inner, optional = unwrap_optional(hint)
    if optional:
        if value is None or (isinstance(value, str) and value.strip().lower() in NULLS):
            return None
        return coerce(label, value, inner)
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return _sequence(label, value, hint, origin)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
            return value.strip().lower() in TRUE
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif hint is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
    elif hint is str:
        if not isinstance(value, list | dict | tuple) and value is not None:
            return str(value)
    else:  # pragma: no cover - a field type this module does not know
        raise TypeError(f"{label}: unsupported field type {hint!r}")
    raise ConfigError(f"{label}: expected {_type_name(hint)}, got {value!r}")


def _sequence(label: str, value: Any, hint: Any, origin: Any) -> list | tuple:
    args = typing.get_args(hint)
    variadic = origin is list or (len(args) == 2 and args[1] is Ellipsis)
    item = args[0] if args else str
    items = value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):  # a YAML flow list: [q_proj, v_proj], [0, 90]
            yaml = require("yaml", "data", "reading a list value")
            try:
                items = yaml.safe_load(text)
            except yaml.YAMLError:
                raise ConfigError(f"{label}: cannot read the list {value!r}") from None
        elif origin is tuple:  # numbers: comma-separated
            items = [x for x in text.split(",") if x.strip()]
        else:  # one string item
            items = [value]
    if not isinstance(items, list | tuple):
        items = [items] if origin is list else None
    if items is None or (not variadic and len(items) != len(args)):
        n = "" if variadic else f"{len(args)} "
        raise ConfigError(
            f"{label}: expected {n}comma-separated {_type_name(item)} values, got {value!r}"
        )
    out = [coerce(label, v, item if variadic else args[i]) for i, v in enumerate(items)]
    return out if origin is list else tuple(out)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))
