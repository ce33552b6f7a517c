"""Command line: `python -m homeserver run|generate-config|register-user ...`."""

from __future__ import annotations

import argparse
import logging
import sys

from homeserver.config import ConfigError, generate_config, load_config

logger = logging.getLogger("homeserver")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m homeserver")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="start the homeserver")
    run.add_argument("--config", "-c", required=True, help="path to homeserver.yaml")

    gen = commands.add_parser("generate-config", help="write a new config and signing key")
    gen.add_argument("--server-name", required=True)
    gen.add_argument("--config-path", required=True)
    gen.add_argument("--data-dir", default=None)
    gen.add_argument("--port", type=int, default=8008)
    gen.add_argument(
        "--open-registration",
        action="store_true",
        help="let anyone register without verification (for a local trial only)",
    )

    reg = commands.add_parser(
        "register-user", help="create an account on a running server (shared-secret API)"
    )
    reg.add_argument("--config", "-c", required=True)
    reg.add_argument("user", help="localpart or full user ID")
    reg.add_argument("--password", "-p", default=None, help="prompted for when omitted")
    reg.add_argument("--admin", action="store_true")
    reg.add_argument("--url", default=None, help="server URL (default: from the config)")

    args = parser.parse_args(argv)
    try:
        if args.command == "generate-config":
            generate_config(
                args.server_name,
                args.config_path,
                args.data_dir,
                open_registration=args.open_registration,
                port=args.port,
            )
            print(f"Wrote {args.config_path}")
            return 0
        if args.command == "run":
            return _run(args.config)
        if args.command == "register-user":
            from homeserver.admin_client import register_user_command

            return register_user_command(
                load_config(args.config), args.user, args.password, args.admin, args.url
            )
    except ConfigError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 1
    return 2


def _run(config_path: str) -> int:
    from twisted.internet import defer, reactor

    from homeserver.logging_setup import setup_logging
    from homeserver.server import HomeServer

    config = load_config(config_path)
    setup_logging(config)
    hs = HomeServer(config, reactor)
    failed: list[BaseException] = []

    async def start() -> None:
        try:
            await hs.start()
            hs.listen()
            logger.info("homeserver %s ready", config.server_name)
        except BaseException as error:
            failed.append(error)
            logger.error("start-up failed: %s", error)
            reactor.stop()

    async def stop() -> None:
        await hs.stop()

    reactor.callWhenRunning(lambda: defer.ensureDeferred(start()))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: defer.ensureDeferred(stop()))
    reactor.run()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
