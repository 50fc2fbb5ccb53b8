from __future__ import annotations

from django.urls import reverse


def test_home_asks_anonymous_visitors_to_log_in(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_login_then_home_lists_only_my_projects(client, world):
    response = client.post(reverse("login"), {"username": "reader_a", "password": "pw-reader_a"})
    assert response.status_code == 302
    page = client.get(reverse("home")).content.decode()
    assert "Alpha Hands Study" in page and "Beta Feet Study" not in page
    assert "0 of 1 radiographs submitted" in page
    assert "Research use only" in page


def test_pages_speak_russian_when_asked(client, world):
    client.force_login(world.users["reader_a"])
    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert 'lang="ru"' in page


def test_leads_see_the_projects_reading_progress_and_readers_do_not(client, world):
    from annotation.models import Radiograph

    Radiograph.objects.filter(pk=world.r1.pk).update(status=Radiograph.Status.READ)
    client.force_login(world.users["lead"])
    page = client.get(reverse("home")).content.decode()
    assert "Radiographs: 1 of 2 read by every reader, 0 being read, 1 waiting" in page
    client.force_login(world.users["reader_a"])
    assert "read by every reader" not in client.get(reverse("home")).content.decode()
    client.force_login(world.users["lead"])
    russian = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="ru").content.decode()
    assert "Снимки: 1 из 2 прочитаны всеми читателями" in russian
