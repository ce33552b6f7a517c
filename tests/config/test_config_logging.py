"""setup_logging: plain stderr logging, Synapse log configs, and Twisted routed into logging."""

from __future__ import annotations

import logging
import logging.handlers
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeserver import logging_setup
from homeserver.config import ConfigError, HomeServerConfig, load_config
from homeserver.logging_setup import PeriodicFlushMemoryHandler, setup_logging

# Captured before the autouse fixture swaps it out.
REAL_ROUTE_TWISTED_LOGS = logging_setup.route_twisted_logs

MINIMAL = """\
server_name: example.com
listeners: [{port: 8008, resources: [{names: [client]}]}]
"""

SYNAPSE_LOG_CONFIG = """\
version: 1

formatters:
    precise:
        format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(request)s - %(message)s'
    structured:
        class: synapse.logging.TerseJsonFormatter

filters:
    context:
        (): synapse.logging.context.LoggingContextFilter
        request: ""

handlers:
    file:
        class: logging.handlers.TimedRotatingFileHandler
        formatter: precise
        filename: logs/homeserver.log
        when: midnight
        backupCount: 3
        filters: [context]
        encoding: utf8

    buffer:
        class: synapse.logging.handlers.PeriodicallyFlushingMemoryHandler
        target: file
        capacity: 10
        flushLevel: 30
        period: 5

    console:
        class: logging.StreamHandler
        formatter: precise

loggers:
    synapse.storage.SQL:
        level: INFO

root:
    level: INFO
    handlers: [buffer]

disable_existing_loggers: false
"""


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Logging is process-global: put the root logger back and keep Twisted untouched."""
    monkeypatch.setattr(logging_setup, "route_twisted_logs", lambda *args: None)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def config_with(tmp_path: Path, extra: str = "") -> HomeServerConfig:
    path = tmp_path / "homeserver.yaml"
    path.write_text(MINIMAL + textwrap.dedent(extra))
    return load_config(str(path))


def test_log_level_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(config_with(tmp_path, "log_level: WARNING\n"))
    logging.getLogger("homeserver.test").info("hidden")
    logging.getLogger("homeserver.test").warning("shown %d", 42)
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert " WARNING homeserver.test: shown 42" in err


def test_synapse_log_config_is_adapted(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "log.config").write_text(SYNAPSE_LOG_CONFIG)
    setup_logging(config_with(tmp_path, "log_config: log.config\n"))
    root = logging.getLogger()
    (buffer,) = root.handlers
    assert isinstance(buffer, PeriodicFlushMemoryHandler)
    assert (buffer.capacity, buffer.flushLevel, buffer.period) == (10, 30, 5)
    assert isinstance(buffer.target, logging.handlers.TimedRotatingFileHandler)

    logging.getLogger("homeserver.test").warning("hello from a request-less context")
    buffer.flush()
    text = (tmp_path / "logs" / "homeserver.log").read_text()
    # Our warnings about the replaced Synapse classes went to the configured log.
    assert "synapse.logging.context.LoggingContextFilter" in text
    assert "synapse.logging.handlers.PeriodicallyFlushingMemoryHandler" in text
    assert "synapse.logging.TerseJsonFormatter" in text
    # %(request)s got a placeholder instead of a formatting error.
    assert "WARNING - - - hello from a request-less context" in text


def test_existing_loggers_stay_enabled(tmp_path: Path) -> None:
    early = logging.getLogger("homeserver.created_before_setup")
    (tmp_path / "log.yaml").write_text(
        "version: 1\nhandlers: {h: {class: logging.NullHandler}}\nroot: {handlers: [h]}\n"
    )
    setup_logging(config_with(tmp_path, "log_config: log.yaml\n"))
    assert early.disabled is False


def test_unimportable_plain_handler_falls_back_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "log.yaml").write_text(
        "version: 1\nhandlers: {h: {class: nowhere.Handler, level: INFO}}\n"
        "root: {level: INFO, handlers: [h]}\n"
    )
    setup_logging(config_with(tmp_path, "log_config: log.yaml\n"))
    (handler,) = logging.getLogger().handlers
    assert type(handler) is logging.StreamHandler
    assert handler.level == logging.INFO


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "cannot read"),
        ("[unclosed\n", "not valid YAML"),
        ("- a list\n", "version: 1"),
        (
            "version: 1\nhandlers: {h: {class: logging.FileHandler, filename: no/such/dir/x.log}}\n"
            "root: {handlers: [h]}\n",
            "log.yaml",
        ),
    ],
)
def test_bad_log_config_is_a_config_error(
    tmp_path: Path, content: str | None, fragment: str
) -> None:
    if content is not None:
        (tmp_path / "log.yaml").write_text(content)
    config = config_with(tmp_path, "log_config: log.yaml\n")
    with pytest.raises(ConfigError) as info:
        setup_logging(config)
    assert info.value.message.startswith(f"{config.config_path}: log_config: ")
    assert fragment in info.value.message


def test_periodic_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(logging_setup.time, "monotonic", lambda: now[0])
    target = logging.handlers.BufferingHandler(100)
    handler = PeriodicFlushMemoryHandler(capacity=50, flushLevel="ERROR", target=target, period=5)
    record = logging.makeLogRecord({"msg": "x", "levelno": logging.INFO})
    handler.handle(record)
    assert target.buffer == []
    now[0] += 6
    handler.handle(record)
    assert len(target.buffer) == 2


def test_twisted_events_reach_stdlib_logging(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from twisted.logger import Logger, LogPublisher

    class FakeBeginner:
        """Stands in for Twisted's global log beginner, which can only start once."""

        def __init__(self) -> None:
            self.observers: list[Any] = []

        def beginLoggingTo(self, observers: list[Any], redirectStandardIO: bool) -> None:
            assert redirectStandardIO is False
            self.observers.extend(observers)

    monkeypatch.setattr(logging_setup, "_twisted_routed", False)
    beginner = FakeBeginner()
    REAL_ROUTE_TWISTED_LOGS(beginner)
    REAL_ROUTE_TWISTED_LOGS(beginner)  # once per process: the second call does nothing
    (observer,) = beginner.observers

    caplog.set_level(logging.INFO, logger="twisted")
    Logger(observer=LogPublisher(observer)).info("twisted says {what}", what="hi")
    assert [r.getMessage() for r in caplog.records if r.name == "twisted"] == ["twisted says hi"]
