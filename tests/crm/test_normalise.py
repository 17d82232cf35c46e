"""normalise_email: its shortcut for plain addresses gives exactly email-validator's answer."""

from __future__ import annotations

import random

import pytest
from django.core.exceptions import ValidationError
from email_validator import EmailNotValidError, validate_email

from crm.normalise import normalise_email

LOCALS = ["ada", "Ada.L", "a+tag", "o'neil", "a..b", ".a", "a.", "Postmaster", "ABUSE", "x" * 65]
DOMAINS = [
    "example.com",
    "Mail.Example.COM",
    "b.test",
    "x.local",
    "x.onion",
    "localhost",
    "com",
    "1.2.3.4",
    "b.123",
    "-a.com",
    "a-.com",
    "a--b.com",
    "xn--bcher-kva.example",
    "XN--BCHER-KVA.example",
    "xn--zz.com",
    "e" * 63 + ".com",
    "e" * 64 + ".com",
    ".".join(["abcdefghi"] * 24) + ".com",
]


def email_validator_answer(raw: str) -> str:
    """What normalise_email promises: email-validator's normalised form, domain lowercased,
    or its refusal."""
    value = raw.strip()
    try:
        local, _, domain = validate_email(value, check_deliverability=False).normalized.rpartition(
            "@"
        )
    except EmailNotValidError as exc:
        return f"refused: {value!r} is not a valid email address: {exc}"
    return f"{local}@{domain.lower()}"


def our_answer(raw: str) -> str:
    try:
        return normalise_email(raw)
    except ValidationError as exc:
        return f"refused: {exc.messages[0]}"


def addresses() -> list[str]:
    rng = random.Random(20260301)
    local_chars = "aZ09._-+!#$%&'*/=?^`{|}~\"@ <>\\é"
    domain_chars = "aZ09.-_xn@é"
    found = [f"{local}@{domain}" for local in LOCALS for domain in DOMAINS]
    for _ in range(5000):
        local = "".join(rng.choice(local_chars) for _ in range(rng.randint(0, 6)))
        domain = "".join(rng.choice(domain_chars) for _ in range(rng.randint(0, 8)))
        found.append(f"{local}@{domain}{rng.choice(['', '.com', '.test'])}")
    return found


def test_normalise_email_agrees_with_email_validator_on_every_address() -> None:
    disagreements = [
        (raw, email_validator_answer(raw), our_answer(raw))
        for raw in addresses()
        if email_validator_answer(raw) != our_answer(raw)
    ]
    assert disagreements == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ada.L@Mail.Example.COM ", "Ada.L@mail.example.com"),
        ("Postmaster@Example.com", "postmaster@example.com"),
        ("x@XN--BCHER-KVA.example", "x@bücher.example"),
    ],
)
def test_normalise_email_keeps_the_local_part_and_lowercases_the_domain(
    raw: str, expected: str
) -> None:
    assert normalise_email(raw) == expected


def test_normalise_email_names_the_address_it_refuses() -> None:
    with pytest.raises(ValidationError) as refused:
        normalise_email("ada@shop.test")
    assert refused.value.messages[0].startswith("'ada@shop.test' is not a valid email address")
