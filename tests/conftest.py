"""Make this checkout importable as ``ansible_collections.bluegreen.aws`` for pytest and ansible-playbook."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

if ROOT.endswith(os.path.join("ansible_collections", "bluegreen", "aws")):
    COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(ROOT)))
else:
    # A plain checkout: lay it out as ansible_collections/bluegreen/aws with a symlink.
    COLLECTIONS = os.path.join(ROOT, ".build", "collections")
    link = os.path.join(COLLECTIONS, "ansible_collections", "bluegreen", "aws")
    os.makedirs(os.path.dirname(link), exist_ok=True)
    if not os.path.islink(link):
        os.symlink(ROOT, link)

sys.path.insert(0, COLLECTIONS)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS
