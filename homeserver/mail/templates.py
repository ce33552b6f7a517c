"""The jinja2 templates of mails and pages: bundled ones, which files of the same name in the
configured `email.template_dir` replace (Synapse's template names and variables, so templates
written for Synapse keep working)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from homeserver.config import ConfigError

BUNDLED_DIR = Path(__file__).parent / "templates"

# Every template the server renders, loaded at start-up so that a broken override stops the
# server with a message instead of failing the first request that needs it.
TEMPLATE_NAMES = (
    "registration.html",
    "registration.txt",
    "add_threepid.html",
    "add_threepid.txt",
    "password_reset.html",
    "password_reset.txt",
    "registration_success.html",
    "registration_failure.html",
    "add_threepid_success.html",
    "add_threepid_failure.html",
    "password_reset_confirmation.html",
    "password_reset_success.html",
    "password_reset_failure.html",
    "notif_mail.html",
    "notif_mail.txt",
)


class Templates:
    """Renders templates by name with `defaults` (app_name, server_name) plus the caller's
    variables. HTML templates are autoescaped; text templates are not (they are plain text)."""

    def __init__(self, template_dir: str | None, source: str, **defaults: Any) -> None:
        """`source` is the config file, for the message when an override is broken."""
        self.source = source
        search_path = [str(BUNDLED_DIR)]
        if template_dir is not None:
            search_path.insert(0, template_dir)
        self.defaults = defaults
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search_path),
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"], default=False),
            # Loaded once: no file system look-ups on the reactor thread while serving.
            auto_reload=False,
            cache_size=-1,
        )
        for name in TEMPLATE_NAMES:
            self._load(name)

    def render(self, name: str, **variables: Any) -> str:
        return self._load(name).render({**self.defaults, **variables})

    def _load(self, name: str) -> jinja2.Template:
        try:
            return self.env.get_template(name)
        except jinja2.TemplateError as error:
            where = getattr(error, "filename", None) or name
            raise ConfigError(
                f"{self.source}: email.template_dir: template {where}: {error}"
            ) from error
