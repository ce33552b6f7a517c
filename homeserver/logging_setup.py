"""Process-wide logging: the stdlib `logging` tree, with Twisted's events routed into it.

Either a Python logging YAML file (`log_config`, Synapse's format: a `logging.config`
dictConfig) or a plain stderr stream at `log_level`. Synapse log configs name Synapse's own
classes (context filters, buffered handlers, JSON formatters); those cannot be imported here, so
they are swapped for stdlib equivalents with a warning rather than stopping start-up.
"""

from __future__ import annotations

import copy
import importlib
import logging
import logging.config
import logging.handlers
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any

import yaml

from homeserver.config import ConfigError, HomeServerConfig

logger = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Attributes every LogRecord has; any other %(name)s a format uses must be supplied by a filter.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
_FORMAT_FIELD_RE = re.compile(r"%\((\w+)\)")
# Synapse formats include %(request)s, which its context filter fills in.
_ALWAYS_DEFAULTED = frozenset({"request"})

_twisted_routed = False


class RecordDefaultsFilter(logging.Filter):
    """Gives records a placeholder for fields that formats expect but nothing here sets.

    Stands in for Synapse's LoggingContextFilter so "%(request)s" formats keep working.
    """

    def __init__(self, fields: Iterable[str] = _ALWAYS_DEFAULTED, placeholder: str = "-"):
        super().__init__()
        self.fields = tuple(fields)
        self.placeholder = placeholder

    def filter(self, record: logging.LogRecord) -> bool:
        for field in self.fields:
            if not hasattr(record, field):
                setattr(record, field, self.placeholder)
        return True


class PeriodicFlushMemoryHandler(logging.handlers.MemoryHandler):
    """A MemoryHandler that also flushes once `period` seconds have passed since the last flush.

    Replaces Synapse's PeriodicallyFlushingMemoryHandler. Without a timer thread, the check
    happens when the next record arrives.
    """

    def __init__(
        self,
        capacity: int = 10,
        flushLevel: int | str = logging.ERROR,  # dictConfig passes keys by their stdlib names
        target: logging.Handler | None = None,
        flushOnClose: bool = True,
        period: float = 5.0,
    ) -> None:
        if isinstance(flushLevel, str):
            flushLevel = logging.getLevelNamesMapping()[flushLevel.upper()]
        super().__init__(capacity, flushLevel, target, flushOnClose)
        self.period = period
        self._last_flush = time.monotonic()

    def shouldFlush(self, record: logging.LogRecord) -> bool:
        due = time.monotonic() - self._last_flush >= self.period
        return due or super().shouldFlush(record)

    def flush(self) -> None:
        super().flush()
        self._last_flush = time.monotonic()


def _importable(dotted: Any) -> bool:
    """Whether dictConfig could resolve `dotted` ("package.module.Name")."""
    if not isinstance(dotted, str):
        return callable(dotted)
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        except Exception:
            # A module that blows up on import is as unusable as a missing one.
            return False
        try:
            for attr in parts[split:]:
                found = getattr(found, attr)
        except AttributeError:
            return False
        return True
    return False


def _format_fields(formatters: dict[str, Any]) -> set[str]:
    fields: set[str] = set()
    for spec in formatters.values():
        if isinstance(spec, dict) and isinstance(spec.get("format"), str):
            fields.update(_FORMAT_FIELD_RE.findall(spec["format"]))
    return fields - _RECORD_ATTRIBUTES


def _fix_formatters(formatters: dict[str, Any], warnings: list[str]) -> None:
    for name, spec in formatters.items():
        if not isinstance(spec, dict):
            continue
        for key in ("()", "class"):
            if key in spec and not _importable(spec[key]):
                warnings.append(f"formatter '{name}': cannot import {spec[key]!r}; plain text used")
                formatters[name] = {
                    k: spec[k] for k in ("format", "datefmt", "style") if k in spec
                } or {"format": LOG_FORMAT}
                break


def _fix_filters(filters: dict[str, Any], fields: set[str], warnings: list[str]) -> None:
    for name, spec in filters.items():
        factory = spec.get("()") if isinstance(spec, dict) else None
        if factory is not None and not _importable(factory):
            warnings.append(f"filter '{name}': cannot import {factory!r}; replaced")
            filters[name] = {"()": RecordDefaultsFilter, "fields": sorted(fields)}


def _replacement_handler(name: str, spec: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    kept = {k: spec[k] for k in ("level", "formatter", "filters") if k in spec}
    if "target" in spec:
        # A buffering handler in front of another one (Synapse's default file logging).
        warnings.append(f"handler '{name}': cannot import {spec['class']!r}; buffering kept")
        extra = ("target", "capacity", "flushLevel", "period")
        kept.update({k: spec[k] for k in extra if k in spec})
        kept["class"] = f"{__name__}.PeriodicFlushMemoryHandler"
        return kept
    warnings.append(f"handler '{name}': cannot import {spec['class']!r}; logging to stderr")
    return kept | {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}


def _fix_handlers(handlers: dict[str, Any], base_dir: str, warnings: list[str]) -> None:
    for name, spec in handlers.items():
        if not isinstance(spec, dict):
            continue
        if "class" in spec and not _importable(spec["class"]):
            spec = handlers[name] = _replacement_handler(name, spec, warnings)
        filename = spec.get("filename")
        if isinstance(filename, str) and not os.path.isabs(filename):
            # Like every path in our config: relative to the file that names it.
            spec["filename"] = os.path.join(base_dir, filename)
        # Every handler gets placeholders for the fields its format may need.
        filters = spec.get("filters")
        spec["filters"] = [*(filters if isinstance(filters, list) else []), "_record_defaults"]


def sanitize_dict_config(config: dict[str, Any], base_dir: str) -> tuple[dict[str, Any], list[str]]:
    """A copy of a dictConfig that this process can apply, and warnings about what changed."""
    config = copy.deepcopy(config)
    warnings: list[str] = []
    # `handlers:` with nothing under it is null in YAML; treat it as empty.
    formatters = config["formatters"] = config.get("formatters") or {}
    filters = config["filters"] = config.get("filters") or {}
    handlers = config["handlers"] = config.get("handlers") or {}
    if not all(isinstance(s, dict) for s in (formatters, filters, handlers)):
        raise ValueError("formatters, filters and handlers must be mappings")
    fields = _format_fields(formatters) | _ALWAYS_DEFAULTED
    _fix_formatters(formatters, warnings)
    _fix_filters(filters, fields, warnings)
    filters["_record_defaults"] = {"()": RecordDefaultsFilter, "fields": sorted(fields)}
    _fix_handlers(handlers, base_dir, warnings)
    # dictConfig's default would silence every logger created before this call, i.e. all
    # module-level loggers; Synapse's generated configs turn it off too.
    config.setdefault("disable_existing_loggers", False)
    return config, warnings


def _load_log_config(config: HomeServerConfig, path: str) -> dict[str, Any]:
    def error(message: str) -> ConfigError:
        return ConfigError(f"{config.config_path}: log_config: {message}")

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror or e}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise error(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise error(f"{path} must be a Python logging dictConfig mapping with 'version: 1'")
    return data


def _configure_from_file(config: HomeServerConfig, path: str) -> None:
    data = _load_log_config(config, path)
    try:
        sanitized, warnings = sanitize_dict_config(data, os.path.dirname(path))
        logging.config.dictConfig(sanitized)
    except (ValueError, TypeError, AttributeError, ImportError) as e:
        cause = f"{e}: {e.__cause__}" if e.__cause__ else str(e)
        raise ConfigError(f"{config.config_path}: log_config: {path}: {cause}") from None
    for warning in warnings:
        logger.warning("%s: %s", path, warning)


def route_twisted_logs(beginner: Any = None) -> None:
    """Sends Twisted's log events to stdlib logging (logger "twisted"), once per process."""
    global _twisted_routed
    if _twisted_routed:
        return
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    beginner = beginner if beginner is not None else globalLogBeginner
    # Keep stdout/stderr as they are: redirecting them into the log could loop back.
    beginner.beginLoggingTo([STDLibLogObserver(name="twisted")], redirectStandardIO=False)
    _twisted_routed = True


def setup_logging(config: HomeServerConfig) -> None:
    """Configures logging for the process from `log_config`, else `log_level` to stderr."""
    if config.log_config:
        _configure_from_file(config, config.log_config)
    else:
        logging.basicConfig(
            level=config.log_level, format=LOG_FORMAT, stream=sys.stderr, force=True
        )
    route_twisted_logs()
