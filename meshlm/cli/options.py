"""Typer options derived from a configuration dataclass (:mod:`meshlm.config`).

:func:`config_options` decorates a command: every field of the dataclass becomes an option
whose name, type, default and help come from the field, so the command line cannot drift from
the library. The command receives, in its ``options`` parameter, only the options the user gave
(field name -> value converted to the field type by :func:`meshlm.config.coerce`): a recipe or
the dataclass defaults supply the rest.

How a field becomes an option (typer builds click options from a function signature, so the
decorator writes one, ``inspect.Signature`` with ``typer.Option`` defaults):

- name ``--field-name`` (``spelling="key"``: ``--field_name``, the recipe key); metadata
  ``flag`` replaces it, ``short`` adds a short flag, ``cli=False`` leaves the field out;
- bool: a flag; ``--no-...`` is added when the default is True, or for every flag with
  ``negatives=True``;
- int, float, str: typed by click; ``X | None``, tuples: text converted by ``coerce``
  (``null``, comma-separated numbers); ``list[str]``: a repeatable option;
- a field without a default is a required option.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

import typer

from meshlm.config import coerce, field_types, unwrap_optional


def _dashes_are_underscores(token: str) -> str:
    return token.replace("-", "_")


# Context settings of a command whose options are spelled as recipe keys: click normalizes
# declared and given option names alike, so --learning-rate and --learning_rate (and
# --no-resume, --no_resume) name the same option while --help shows one spelling.
ANY_SEPARATOR = {"token_normalize_func": _dashes_are_underscores}


@dataclasses.dataclass(frozen=True)
class OptionSpec:
    """One derived option: the field it comes from and its click declaration."""

    name: str
    hint: Any
    decls: tuple[str, ...]
    default: Any  # as the command line shows it (``...`` when required)
    help: str
    annotation: Any  # the type typer sees
    multiple: bool
    metavar: str | None  # for options read as text: the field type

    @property
    def label(self) -> str:
        """The main long flag (``--rotations``), used in error messages."""
        return next(d for d in self.decls if d.startswith("--")).split("/")[0]

    def convert(self, raw: Any) -> Any:
        """The typed field value of what click parsed."""
        if self.multiple:
            return [x for item in raw for x in coerce(self.label, item, self.hint)]
        return coerce(self.label, raw, self.hint)


def option_specs(cls: type, *, spelling: str = "dash", negatives: bool = False) -> list[OptionSpec]:
    """The options of every field of dataclass ``cls`` (those with ``cli=False`` left out)."""
    types_ = field_types(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init or f.metadata.get("cli", True) is False:
            continue
        hint = types_[f.name]
        name = f.name if spelling == "key" else f.name.replace("_", "-")
        longs = [f.metadata.get("flag") or "--" + name]
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...
        inner, optional = unwrap_optional(hint)
        origin = typing.get_origin(hint)
        multiple = origin is list
        metavar = None
        if hint is bool:
            annotation = bool
            if negatives or default is True:
                longs = [f"{longs[0]}/--no-{longs[0][2:]}"]
        elif multiple:
            annotation = list[str]
            default = [str(x) for x in default]
        elif origin is tuple:
            annotation = str
            default = ",".join(str(x) for x in default) if default is not ... else ...
            args = typing.get_args(hint)
            variadic = len(args) == 2 and args[1] is Ellipsis
            names = [a.__name__ for a in args[: 1 if variadic else None]]
            metavar = "<" + ",".join(names) + (",...>" if variadic else ">")
        elif optional:
            annotation = str  # "null" must reach coerce
            metavar = f"<{getattr(inner, '__name__', 'str')}>"
        elif hint in (int, float, str):
            annotation = hint
        else:  # pragma: no cover - a field type the generator does not know
            raise TypeError(f"{cls.__name__}.{f.name}: no option for type {hint!r}")
        short = f.metadata.get("short")
        decls = (*longs, *([short] if short else []))
        help_ = f.metadata.get("help", "")
        out.append(OptionSpec(f.name, hint, decls, default, help_, annotation, multiple, metavar))
    return out


def config_options(
    cls: type, *, spelling: str = "dash", negatives: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: add every field of ``cls`` to a typer command as an option (see the module).

    The decorated function declares its own options as usual plus a parameter ``options``; it
    is called with ``options`` = {field name: typed value} of the options given on the command
    line (not those left at their default). Raises :class:`meshlm.config.ConfigError` for a
    value ``coerce`` refuses (one line naming the option).
    """
    specs = option_specs(cls, spelling=spelling, negatives=negatives)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        kw = inspect.Parameter.KEYWORD_ONLY  # typer calls commands with keywords only
        own = [p.replace(kind=kw) for p in sig.parameters.values() if p.name != "options"]
        clash = {p.name for p in own} & {s.name for s in specs}
        if clash:  # pragma: no cover - a programming error
            raise TypeError(f"{fn.__name__}: parameters shadow config fields: {sorted(clash)}")
        ctx_name = next((p.name for p in own if p.annotation is typer.Context), None)
        added_ctx = ctx_name is None
        if added_ctx:
            ctx_name = "config_ctx"
            own.append(inspect.Parameter(ctx_name, kw, annotation=typer.Context))
        generated = [
            inspect.Parameter(
                s.name,
                kw,
                default=typer.Option(
                    s.default,
                    *s.decls,
                    help=s.help,
                    metavar=s.metavar,
                ),
                annotation=s.annotation,
            )
            for s in specs
        ]

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            ctx = kwargs[ctx_name]
            given = {}
            for s in specs:
                raw = kwargs.pop(s.name)
                source = ctx.get_parameter_source(s.name)
                if source is not None and source.name.startswith("DEFAULT"):
                    continue
                given[s.name] = s.convert(raw)
            if added_ctx:
                kwargs.pop(ctx_name)
            return fn(*args, options=given, **kwargs)

        ordered = own + generated
        command.__signature__ = sig.replace(parameters=ordered)  # type: ignore[attr-defined]
        command.__annotations__ = {p.name: p.annotation for p in ordered}
        return command

    return decorate
