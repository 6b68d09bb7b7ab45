"""Launch template versions keep their user data as EC2 does.

moto 5.2.5's ``CreateLaunchTemplate`` parses ``LaunchTemplateData.UserData`` into a ``Base64EncodedString`` (and
refuses one that is not base64), but ``CreateLaunchTemplateVersion`` stores the raw string: the version's
``user_data`` then fails moto's own assertion, and an Auto Scaling group launching from version 2 or later crashes
the emulator's ticker (every scale-out of a group on a newer version).  On AWS both calls take base64 user data
(``InvalidUserData.Malformed`` otherwise) and a group launches from any version alike.  The version's data is parsed
here as ``CreateLaunchTemplate`` parses it.
"""

from moto.ec2.models.launch_templates import LaunchTemplate
from moto.ec2.utils import parse_user_data

_create_version = LaunchTemplate.create_version


def create_version(self, data, description):
    if isinstance(data, dict) and isinstance(data.get("UserData"), str):
        data = dict(data, UserData=parse_user_data(data["UserData"]))
    return _create_version(self, data, description)


PATCHES = [(LaunchTemplate, "create_version", create_version)]
