"""The email section, registrations_require_3pid and the templates as the config loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homeserver.config import ConfigError, parse_config
from homeserver.mail.templates import Templates

BASE: dict[str, Any] = {
    "server_name": "example.com",
    "listeners": [{"port": 8008, "resources": [{"names": ["client"]}]}],
}
EMAIL = {"notif_from": "Your Friendly %(app)s homeserver <noreply@example.com>"}


def load(tmp_path: Path, **keys: Any):
    return parse_config({**BASE, **keys}, str(tmp_path / "homeserver.yaml"))


def error(tmp_path: Path, **keys: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **keys)
    return info.value.message


def test_no_email_section_means_no_email(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.email is None
    assert config.registrations_require_3pid == ()
    assert config.request_token_inhibit_3pid_errors is False
    assert load(tmp_path, email={}).email is None


def test_defaults_are_synapse_defaults(tmp_path: Path) -> None:
    email = load(tmp_path, email=EMAIL).email
    assert email is not None
    assert (email.smtp_host, email.smtp_port) == ("localhost", 25)
    assert (email.smtp_user, email.smtp_pass) == (None, None)
    assert email.require_transport_security is False
    assert email.enable_tls is True
    assert email.app_name == "Matrix"
    assert email.notif_from == "Your Friendly Matrix homeserver <noreply@example.com>"
    assert email.template_dir is None
    assert email.validation_token_lifetime_ms == 3600 * 1000


def test_every_key(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    email = load(
        tmp_path,
        email={
            **EMAIL,
            "smtp_host": "mail.example.com",
            "smtp_port": 587,
            "smtp_user": "u",
            "smtp_pass": "p",
            "require_transport_security": True,
            "app_name": "Chat",
            "template_dir": "templates",
            "validation_token_lifetime": "2d",
        },
    ).email
    assert email is not None
    assert (email.smtp_host, email.smtp_port, email.smtp_user, email.smtp_pass) == (
        "mail.example.com",
        587,
        "u",
        "p",
    )
    assert email.require_transport_security is True
    assert email.notif_from == "Your Friendly Chat homeserver <noreply@example.com>"
    assert email.template_dir == str(tmp_path / "templates")
    assert email.validation_token_lifetime_ms == 2 * 86400 * 1000


@pytest.mark.parametrize(
    ("email", "key", "fragment"),
    [
        ({"smtp_host": "mail"}, "email.notif_from", "required"),
        ({"notif_from": "no address here"}, "email.notif_from", "sender address"),
        ({"notif_from": "%(name)s <a@b.c>"}, "email.notif_from", "%(app)s"),
        ({**EMAIL, "smtp_port": 0}, "email.smtp_port", "between 1 and 65535"),
        ({**EMAIL, "smtp_user": "u"}, "email.smtp_pass", "set both or neither"),
        ({**EMAIL, "enable_tls": False, "require_transport_security": True},
         "email.require_transport_security", "enable_tls"),
        ({**EMAIL, "template_dir": "missing"}, "email.template_dir", "not a directory"),
        ({**EMAIL, "validation_token_lifetime": "soon"}, "email.validation_token_lifetime",
         "duration"),
        ({**EMAIL, "validation_token_lifetime": 0}, "email.validation_token_lifetime", "0"),
    ],
)
def test_bad_email_values(tmp_path: Path, email: dict, key: str, fragment: str) -> None:
    message = error(tmp_path, email=email)
    assert f": {key}: " in message, message
    assert fragment in message, message


def test_required_email_counts_as_verification(tmp_path: Path) -> None:
    config = load(
        tmp_path, email=EMAIL, enable_registration=True, registrations_require_3pid=["email"]
    )
    assert config.enable_registration is True
    assert config.enable_registration_without_verification is False
    assert config.registrations_require_3pid == ("email",)
    # Email that is only possible is not verification.
    message = error(tmp_path, email=EMAIL, enable_registration=True)
    assert "enable_registration_without_verification: true" in message
    assert "registrations_require_3pid" in message


def test_registrations_require_3pid_needs_email(tmp_path: Path) -> None:
    assert "email section" in error(tmp_path, registrations_require_3pid=["email"])
    assert "only 'email'" in error(tmp_path, email=EMAIL, registrations_require_3pid=["msisdn"])


def test_broken_template_override_stops_start_up(tmp_path: Path) -> None:
    (tmp_path / "registration.txt").write_text("{% if %}")
    with pytest.raises(ConfigError) as info:
        Templates(str(tmp_path), "homeserver.yaml", app_name="Matrix", server_name="x")
    assert info.value.message.startswith("homeserver.yaml: email.template_dir: template ")
    assert "registration.txt" in info.value.message


def test_bundled_templates_render(tmp_path: Path) -> None:
    templates = Templates(None, "homeserver.yaml", app_name="Chat", server_name="example.com")
    text = templates.render("password_reset.txt", link="https://x/?a=1&b=2")
    assert "https://x/?a=1&b=2" in text
    html = templates.render("password_reset.html", link="https://x/?a=1&b=2")
    assert 'href="https://x/?a=1&amp;b=2"' in html
    failure = templates.render("registration_failure.html", failure_reason="<script>")
    assert "&lt;script&gt;" in failure and "<script>" not in failure
