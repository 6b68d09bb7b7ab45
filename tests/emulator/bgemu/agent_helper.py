"""Run by bgemu.agent inside an instance (its mount namespace): unpack a bundle, install its files.

agent_helper.py unpack DIR                                  the zip on stdin, into DIR (emptied first), modes kept
agent_helper.py install ARCHIVE FILES_JSON BEHAVIOUR        appspec ``files:`` [{"source", "destination"}]
"""

import io
import json
import os
import shutil
import sys
import zipfile


def unpack(directory):
    data = sys.stdin.buffer.read()
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            path = os.path.realpath(os.path.join(directory, entry.filename))
            if not path.startswith(os.path.realpath(directory) + os.sep):
                sys.exit(f"bundle entry {entry.filename} points outside the archive")
            archive.extract(entry, directory)
            mode = (entry.external_attr >> 16) & 0o7777
            if mode and not entry.is_dir():
                os.chmod(path, mode)


def install(archive, files, behaviour):
    for item in json.loads(files):
        source = os.path.join(archive, item["source"].lstrip("/"))
        destination = item["destination"]
        pairs = []
        if os.path.isdir(source):
            for root, _dirs, names in os.walk(source):
                for name in names:
                    path = os.path.join(root, name)
                    pairs.append((path, os.path.join(destination, os.path.relpath(path, source))))
        else:
            pairs.append((source, os.path.join(destination, os.path.basename(source))))
        for src, dest in pairs:
            if os.path.exists(dest):
                if behaviour == "RETAIN":
                    continue
                if behaviour == "DISALLOW":
                    sys.exit(f"The deployment failed because a specified file already exists at this location: {dest}")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(src, dest)


def main():
    command, args = sys.argv[1], sys.argv[2:]
    if command == "unpack":
        unpack(*args)
    elif command == "install":
        install(*args)
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
