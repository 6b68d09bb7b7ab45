"""S3 conditional writes made atomic, as on AWS.

moto 5.2.5 handles ``If-None-Match: *`` and ``If-Match`` in ``PutObject`` / ``DeleteObject`` by reading the object,
comparing, then writing: two concurrent requests can both pass the comparison and both "win". On AWS a conditional
write is atomic: of two concurrent writers with the same condition one wins and the other gets 412
``PreconditionFailed`` (or 409 ``ConditionalRequestConflict``). The release lock relies on that, so every object
write and delete here runs under one lock (writes are few in the emulator; the cost is nil).
"""

import threading

from moto.s3.responses import S3Response

WRITES = threading.Lock()

_put_object = S3Response.put_object
_delete_object = S3Response.delete_object


def put_object(self):
    with WRITES:
        return _put_object(self)


def delete_object(self):
    with WRITES:
        return _delete_object(self)


PATCHES = [
    (S3Response, "put_object", put_object),
    (S3Response, "delete_object", delete_object),
]
