"""Login throttling: wrong passwords for one account from one address lock that pair; staff unlock it."""
from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client
from django.urls import reverse


def _login(client: Client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def _logged_in_as(client: Client) -> str | None:
    response = client.get(reverse("api-project-list"))
    return None if response.status_code in (401, 403) else response.wsgi_request.user.username


def test_after_the_failure_limit_even_the_right_password_is_refused_with_a_clear_message(world):
    client = Client()
    answers = [_login(client, "reader_a", "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]  # the form again, until the limit

    response = _login(client, "reader_a", "pw-reader_a")

    assert response.status_code == 429
    page = response.content.decode()
    assert f"There were {settings.AXES_FAILURE_LIMIT} failed logins for this account from this address." in page
    assert "Try again in 15 minutes." in page and "unlock the account in the admin" in page
    assert _logged_in_as(client) is None


def test_thirty_wrong_passwords_then_the_right_one_does_not_log_in(world):
    client = Client()
    for _ in range(30):
        _login(client, "reader_a", "wrong")
    _login(client, "reader_a", "pw-reader_a")
    assert _logged_in_as(client) is None


def test_the_lock_holds_for_that_account_at_that_address_only(world):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "reader_a", "wrong", "10.0.0.1")

    other_user = Client()
    _login(other_user, "reader_b", "pw-reader_b", "10.0.0.1")
    same_user_elsewhere = Client()
    _login(same_user_elsewhere, "reader_a", "pw-reader_a", "10.0.0.2")

    assert _logged_in_as(other_user) == "reader_b"
    assert _logged_in_as(same_user_elsewhere) == "reader_a"


def test_an_unknown_username_is_locked_the_same_way_so_the_lock_reveals_no_account(world):
    responses = [_login(Client(), name, "wrong").status_code for name in ("reader_a", "no-such-user") for _ in range(settings.AXES_FAILURE_LIMIT + 1)]
    assert responses[settings.AXES_FAILURE_LIMIT] == responses[-1] == 429


@pytest.mark.django_db
def test_staff_unlock_an_account_in_the_admin(world):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(Client(), "reader_a", "wrong")
    attempt = AccessAttempt.objects.get(username="reader_a")
    staff = Client()
    staff.force_login(world.users["staff"])

    listing = staff.get(reverse("admin:axes_accessattempt_changelist"))
    deleted = staff.post(reverse("admin:axes_accessattempt_delete", args=[attempt.pk]), {"post": "yes"})

    assert listing.status_code == 200 and "reader_a" in listing.content.decode()
    assert deleted.status_code == 302 and not AccessAttempt.objects.exists()
    client = Client()
    _login(client, "reader_a", "pw-reader_a")
    assert _logged_in_as(client) == "reader_a"
