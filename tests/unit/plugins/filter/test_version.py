"""The version-name filters as Jinja sees them: a bad name fails the task naming the wrong part."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.bluegreen.aws.plugins.filter.version import FilterModule

FILTERS = FilterModule().filters()


def test_build_parse_validate():
    name = FILTERS["version_name"]("ABC-123", "orders", "2026-01-01T21:00:00+09:00")
    assert name == "ABC-123-orders-20260101120000"
    assert FILTERS["version_parse"](name)["module"] == "orders"
    assert FILTERS["version_valid"](name) and not FILTERS["version_valid"]("ABC-123-orders-2026")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: FILTERS["version_parse"]("ABC-123-Orders-20260101120000"), "version_parse: module part 'Orders'"),
        (
            lambda: FILTERS["version_parse"]("ABC-123-orders-20260132120000"),
            "version_parse: time part '20260132120000'",
        ),
        (lambda: FILTERS["version_name"]("123", "orders"), "version_name: ticket part '123'"),
    ],
)
def test_errors_name_the_part(call, message):
    with pytest.raises(AnsibleFilterError, match=None) as error:
        call()
    assert message in str(error.value)


def test_redact():
    assert FILTERS["redact"]({"webhook_url": "u", "n": 1}) == {"webhook_url": "REDACTED", "n": 1}
