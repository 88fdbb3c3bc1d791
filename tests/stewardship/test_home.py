"""The home page at `/`: links for a signed-in person, a sign-in redirect otherwise, and the
admin's "View site" lands there."""

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_anonymous_visitors_are_sent_to_sign_in():
    response = Client().get("/")

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next=/"


def test_a_steward_sees_the_desk_api_docs_and_health(steward_client, acme_pair):
    response = steward_client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="{reverse("stewardship:dashboard")}"' in html
    assert f'href="{reverse("swagger-ui")}"' in html
    assert f'href="{reverse("healthz")}"' in html
    assert "<strong>1</strong> open candidate" in html


def test_a_signed_in_user_without_the_desk_sees_no_desk_link(django_user_model):
    client = Client()
    client.force_login(django_user_model.objects.create_user("bob", password="x"))

    html = client.get("/").content.decode()

    assert reverse("stewardship:dashboard") not in html
    assert reverse("swagger-ui") in html


def test_the_admins_view_site_lands_on_the_home_page(steward_client):
    html = steward_client.get(reverse("admin:index")).content.decode()

    assert '<a href="/">View site</a>' in html
