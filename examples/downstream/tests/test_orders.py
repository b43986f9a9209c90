"""pytest-django and the plugin together: the test database lives on the plugin's server."""

import pytest
from django.db import connection
from shop.models import Order


@pytest.mark.django_db(transaction=True)
def test_orders_are_stored_in_the_test_database(worker_id: str) -> None:
    Order.objects.create(reference="A-1")
    assert Order.objects.count() == 1
    assert connection.connection is None  # the pooled connection went back after the query
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        name = cursor.fetchone()[0]
    suffix = "" if worker_id == "master" else f"_{worker_id}"
    assert name == f"test_shop{suffix}"
