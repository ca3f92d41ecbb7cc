"""Submission checks beyond the schema: the service's limits, the dataset source, the family's options.

Everything here runs before a job is stored, so a spec that would fail on a worker is a 422
naming the field to fix instead.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import HTTPException, status

from nas.data import BUILTIN_SHAPES, DatasetError, npz_geometry
from nas.schemas import JobSpec
from nas.settings import Limits, Settings
from nas.sources import SourceError, SourcePolicy, check_source

Problem = tuple[tuple[str | int, ...], str]


def _error(loc: tuple[str | int, ...], msg: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": "value_error"}


def refuse(problems: list[Problem]) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT, detail=[_error(loc, msg) for loc, msg in problems]
    )


def limit_problems(spec: JobSpec, limits: Limits) -> list[Problem]:
    """Every count or size of ``spec`` above the service's limits."""
    checks: list[tuple[tuple[str | int, ...], int | None, int, str]] = [
        (("name",), len(spec.name), limits.name_length, "name_length"),
        (("training", "epochs"), spec.training.epochs, limits.epochs, "epochs"),
        (("training", "batch_size"), spec.training.batch_size, limits.batch_size, "batch_size"),
        (("training", "warmup_epochs"), spec.training.warmup_epochs, limits.warmup_epochs, "warmup_epochs"),
        (
            ("training", "num_random_subnets"),
            spec.training.num_random_subnets,
            limits.num_random_subnets,
            "num_random_subnets",
        ),
        (
            ("training", "bn_calibration_images"),
            spec.training.bn_calibration_images,
            limits.bn_calibration_images,
            "bn_calibration_images",
        ),
        (("search", "population"), spec.search.population, limits.population, "population"),
        (("search", "generations"), spec.search.generations, limits.generations, "generations"),
        (("search", "rounds"), spec.search.rounds, limits.rounds, "rounds"),
        (("search", "measure_budget"), spec.search.measure_budget, limits.measure_budget, "measure_budget"),
        (("objectives",), len(spec.objectives), limits.objectives, "objectives"),
        (("constraints",), len(spec.constraints), limits.constraints, "constraints"),
        (("targets",), len(spec.targets), limits.targets, "targets"),
        (("dataset", "limit"), spec.dataset.limit, limits.dataset_limit, "dataset_limit"),
    ]
    checks += [
        (
            ("targets", i, "constraints"),
            len(t.constraints),
            limits.constraints_per_target,
            "constraints_per_target",
        )
        for i, t in enumerate(spec.targets)
    ]
    problems: list[Problem] = []
    for loc, value, most, env in checks:
        if value is None or value <= most:
            continue
        where = ".".join(map(str, loc))
        if loc[-1] in ("objectives", "constraints", "targets"):
            said = f"{where} has {value} entries"
        elif loc[-1] == "name":
            said = f"name has {value} characters"
        else:
            said = f"{where} is {value}"
        problems.append((loc, f"{said}, above this service's limit of {most} (NAS_LIMITS__{env.upper()})"))
    return problems


def _option_problems(options: Any, limits: Limits, loc: tuple[str | int, ...]) -> list[Problem]:
    """Integers too large and lists too long anywhere in the family's options (before the family runs)."""
    if isinstance(options, bool):
        return []
    if isinstance(options, int | float) and abs(options) > limits.space_int:
        return [(loc, f"search_space.{'.'.join(map(str, loc[1:]))} is {options}, above {limits.space_int}")]
    if isinstance(options, list):
        most = limits.space_stages if loc[-1] == "stages" else limits.space_choices
        if len(options) > most:
            return [(loc, f"search_space.{loc[-1]} has {len(options)} entries, above the limit of {most}")]
        return [p for i, v in enumerate(options) for p in _option_problems(v, limits, (*loc, i))]
    if isinstance(options, dict):
        return [p for k, v in options.items() for p in _option_problems(v, limits, (*loc, str(k)))]
    return []


def dataset_geometry(
    spec: JobSpec, policy: SourcePolicy
) -> tuple[tuple[int, int, int] | None, list[Problem]]:
    """(channels, classes, image size) of the spec's dataset, or the problems with its source."""
    ds = spec.dataset
    try:
        if ds.kind == "builtin":
            if ds.name not in BUILTIN_SHAPES:
                names = ", ".join(BUILTIN_SHAPES)
                return None, [
                    (("dataset", "name"), f"unknown built-in dataset {ds.name!r}; available: {names}")
                ]
            return BUILTIN_SHAPES[ds.name], []
        if ds.kind == "npz":
            return npz_geometry(str(ds.uri), policy), []
        check_source(str(ds.uri), policy, want="dir")
        return None, [
            (("dataset", "kind"), "dataset kind 'image-folder' is not supported by the loader yet; use 'npz'")
        ]
    except (SourceError, DatasetError) as exc:
        return None, [(("dataset", "uri"), str(exc))]


def family_problems(spec: JobSpec, geometry: tuple[int, int, int]) -> list[Problem]:
    """The family's own verdict on the spec's options, for the dataset's geometry."""
    import supernets  # imports torch: only when a job is submitted

    families = supernets.list_families()
    if spec.search_space.family not in families:
        return [
            (
                ("search_space", "family"),
                f"unknown search_space.family {spec.search_space.family!r}; "
                f"available: {', '.join(families) or 'none'}",
            )
        ]
    channels, classes, size = geometry
    try:
        supernets.make_space(
            spec.search_space.model_dump(), in_channels=channels, num_classes=classes, image_size=size
        )
    except (ValueError, TypeError, KeyError) as exc:
        field = re.match(r"search_space\.(\w+)", str(exc))
        return [(("search_space", field.group(1)) if field else ("search_space",), f"{exc}")]
    return []


def check_submission(spec: JobSpec, settings: Settings) -> None:
    """Raise a 422 listing what to fix unless ``spec`` is within limits and can be run as given."""
    problems = limit_problems(spec, settings.limits)
    problems += _option_problems(spec.search_space.options(), settings.limits, ("search_space",))
    if problems:
        raise refuse(problems)
    geometry, problems = dataset_geometry(spec, SourcePolicy.from_settings(settings))
    if geometry is not None:
        problems += family_problems(spec, geometry)
    if problems:
        raise refuse(problems)


def _unprocessable(loc: list[str], msg: str) -> HTTPException:
    return HTTPException(
        status.HTTP_422_UNPROCESSABLE_CONTENT,
        detail=[{"loc": ["body", *loc], "msg": msg, "type": "value_error"}],
    )


def check_family(spec: JobSpec) -> None:
    """422 unless the family is registered, its options pass the checks it can make without the data,
    the schedule can train it and the sampler is one the schedule draws with; a spec naming no
    schedule gets the family's default, and one naming no sampler the schedule's default."""
    import supernets  # imports torch: only when a job is submitted
    from supernets.training import schedule_samplers

    families = supernets.list_families()
    if spec.search_space.family not in families:
        raise _unprocessable(
            ["search_space", "family"],
            f"unknown search_space.family {spec.search_space.family!r}; "
            f"available: {', '.join(families) or 'none'}",
        )
    cls = supernets.get_space_class(spec.search_space.family)
    try:
        cls.check_options(spec.search_space.options())
    except ValueError as exc:
        raise _unprocessable(["search_space"], str(exc)) from None
    if "schedule" not in spec.training.model_fields_set:
        spec.training.schedule = cls.schedules[0]  # type: ignore[assignment]
    elif spec.training.schedule not in cls.schedules:
        raise _unprocessable(
            ["training", "schedule"],
            f"training.schedule {spec.training.schedule!r} cannot train family {cls.family}; "
            f"use one of {list(cls.schedules)}",
        )
    usable = schedule_samplers(spec.training.schedule)
    if spec.training.sampler is None:
        spec.training.sampler = usable[0]
    elif spec.training.sampler not in usable:
        raise _unprocessable(
            ["training", "sampler"],
            f"training.sampler {spec.training.sampler!r} cannot be used by schedule "
            f"{spec.training.schedule!r} (family {cls.family}); use one of {list(usable)}",
        )
