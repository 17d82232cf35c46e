"""Settings come from the environment; production refuses unsafe configurations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-secret-for-the-deploy-check-0123456789",
    "ALLOWED_HOSTS": "marketing.example.com",
    "PUBLIC_BASE_URL": "https://marketing.example.com",
}


def _manage(*args: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    dropped = {"DEBUG", "SECRET_KEY", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in dropped}
    base.update(env)
    base.setdefault("VAR_DIR", str(tmp_path / "var"))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean_with_production_variables(tmp_path: Path) -> None:
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV, tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key(tmp_path: Path) -> None:
    env = {**PRODUCTION_ENV, "SECRET_KEY": ""}
    result = _manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_twilio_without_credentials_is_a_clear_configuration_error(tmp_path: Path) -> None:
    env = {"SMS_BACKEND": "twilio", "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""}
    result = _manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "TWILIO_ACCOUNT_SID" in result.stderr


def test_database_url_selects_postgresql(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "d = settings.DATABASES['default']; print(d['ENGINE'], d['NAME'], d['PORT'])",
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "VAR_DIR": str(tmp_path),
            "DATABASE_URL": "postgres://shop:pw@db.internal:5433/cadence",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.split() == ["django.db.backends.postgresql", "cadence", "5433"]


def test_development_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    env = {"VAR_DIR": str(tmp_path)}
    _manage("check", env=env, tmp_path=tmp_path)
    first = (tmp_path / "secret_key.txt").read_text()
    _manage("check", env=env, tmp_path=tmp_path)
    assert (tmp_path / "secret_key.txt").read_text() == first
    assert len(first) >= 50


@pytest.mark.django_db
def test_sqlite_runs_in_wal_mode_so_web_and_worker_write_concurrently() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("WAL is a SQLite setting; this run uses " + connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


@pytest.mark.django_db
def test_models_and_migrations_agree() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _setting(name: str, env: dict[str, str], tmp_path: Path) -> str:
    """The repr of one setting in a fresh process with these environment variables."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            f"print(repr(getattr(settings, {name!r}, None)))",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_x_forwarded_proto_is_not_trusted_in_production_without_trusted_proxy(
    tmp_path: Path,
) -> None:
    assert _setting("SECURE_PROXY_SSL_HEADER", PRODUCTION_ENV, tmp_path) == "None"


def test_x_forwarded_proto_is_trusted_when_trusted_proxy_is_true(tmp_path: Path) -> None:
    env = {**PRODUCTION_ENV, "TRUSTED_PROXY": "true"}
    assert _setting("SECURE_PROXY_SSL_HEADER", env, tmp_path) == (
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_check_fails_when_email_esp_is_set_without_a_webhook_secret(tmp_path: Path) -> None:
    env = {"EMAIL_ESP": "postmark", "ANYMAIL_WEBHOOK_SECRET": "", "WEBHOOK_SECRET": ""}
    result = _manage("check", env=env, tmp_path=tmp_path)
    assert result.returncode != 0
    assert "campaigns.E002" in result.stderr
