# Copyright: Contributors to the bluegreen.aws project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Release version names ``[ticket]-[module]-[yyyyMMddHHmmss]`` (UTC): build, parse, validate.

- ``'ABC-123' | bluegreen.aws.version_name('orders')`` -> ``ABC-123-orders-20260101120000`` (now, UTC);
  a second argument gives the time (epoch seconds, ISO 8601, a datetime, or yyyyMMddHHmmss).
- ``name | bluegreen.aws.version_parse`` -> ``{name, ticket, module, timestamp, time}``; a bad name fails the task
  with a message naming the wrong part (ticket, module or time).
- ``name | bluegreen.aws.version_valid`` -> true / false, for ``when:`` and ``assert``.
- ``data | bluegreen.aws.redact`` -> a copy with the values of secret-looking keys (password, token, secret, webhook,
  credential, authorization, api key, private) replaced by ``REDACTED``: what release records and notifications keep.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.bluegreen.aws.plugins.module_utils.release import VersionError
from ansible_collections.bluegreen.aws.plugins.module_utils.release import parse_version
from ansible_collections.bluegreen.aws.plugins.module_utils.release import scrub
from ansible_collections.bluegreen.aws.plugins.module_utils.release import version_name


def _version_name(ticket, module, when=None):
    try:
        return version_name(ticket, module, when)
    except VersionError as e:
        raise AnsibleFilterError(f"version_name: {e}") from None


def _version_parse(name):
    try:
        return parse_version(name)
    except VersionError as e:
        raise AnsibleFilterError(f"version_parse: {e}") from None


def _version_valid(name):
    try:
        parse_version(name)
    except VersionError:
        return False
    return True


class FilterModule:
    def filters(self):
        return {
            "version_name": _version_name,
            "version_parse": _version_parse,
            "version_valid": _version_valid,
            "redact": scrub,
        }
