"""bgemu's stand-in container engine: the subset of the docker CLI the appspec role's hook scripts call, run by the
emulator's CodeDeploy agent inside an instance (its network and mount namespaces).  A "container" is the demo app
(roles/local_bluegreen/files/demo_app.py, path in $BGEMU_DEMO_APP) run as a process of the instance:

  image  <registry>/<repository>:<tag>  ->  demo_app.py --version <tag>; a tag ending in "-broken" adds --fail
         (/health answers 503, / answers 500), one ending in "-fail-after-<N>" adds --fail-after N (healthy for N
         seconds, then broken); a digest ref <repository>@sha256:<hex> -> the version its manifest's
         org.opencontainers.image.version annotation names (else "sha256:<first 12 hex>"), from the emulated ECR
         images the agent passes in $BGEMU_ECR_IMAGES; a digest that repository does not hold fails to pull
         ("manifest unknown"), as a registry answers
  run    -d/--detach --name N -p/--publish [ip:]host:container --env-file F -e/--env K[=V] -v/--volume
         --restart P --ulimit ... IMAGE [ARGS...]: listens on the published host port (first -p; none: 8080) of the
         instance; ARGS are appended to the demo app's (the image's entrypoint is demo_app.py);
         returns once the port answers (10 s at most) or the process has exited
  stop [-t/--time S] N, rm [-f/--force] N, inspect / container inspect [--format {{.State.Status}}|
  {{.Config.Image}}|{{.Id}}|{{.Name}}] N, image inspect IMG, pull [--quiet] IMG, login, ps [-a] [-q],
  logs [--tail N] N, version

State lives in /var/lib/bgemu-engine (the instance's own /var).  Not modelled: restart policies, volumes (the
process runs in the instance's file system), resource limits, networks, exec.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

STATE = "/var/lib/bgemu-engine"
CONTAINERS = os.path.join(STATE, "containers")
IMAGES = os.path.join(STATE, "images.json")
LOGS = os.path.join(STATE, "logs")


def fail(message, code=1):
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(code)


def load(name):
    path = os.path.join(CONTAINERS, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def save(container):
    os.makedirs(CONTAINERS, exist_ok=True)
    tmp = os.path.join(CONTAINERS, container["Name"] + ".json.tmp")
    with open(tmp, "w") as f:
        json.dump(container, f)
    os.replace(tmp, os.path.join(CONTAINERS, container["Name"] + ".json"))


def alive(container):
    pid = container.get("Pid")
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z" and fields[19] == str(container.get("StartTime"))


def status(container):
    return "running" if alive(container) else "exited"


def repository_of(image):
    """The repository of an image reference without its registry (docker's rule: a first component with "." or ":"
    or "localhost" names a registry), tag and digest."""
    name = image.split("@", 1)[0]
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    last = parts[-1].split(":", 1)[0]
    return "/".join(parts[:-1] + [last])


def digest_version(image):
    """The version of a digest reference, from the emulated ECR's images; None when the repository lacks it."""
    known = json.loads(os.environ.get("BGEMU_ECR_IMAGES") or "{}")
    return known.get(f"{repository_of(image)}@{image.split('@', 1)[1]}")


def image_version(image):
    """(version, extra demo app flags) of an image reference."""
    ref = image.rsplit("/", 1)[-1]
    if "@" in ref:
        tag = digest_version(image) or ref.split("@", 1)[1][:19]
    else:
        tag = ref.rsplit(":", 1)[1] if ":" in ref else "latest"
    if tag.endswith("-broken"):
        return tag, ["--fail"]
    match = re.search(r"-fail-after-([0-9]+)$", tag)
    if match:
        return tag, ["--fail-after", match.group(1)]
    return tag, []


def images():
    if not os.path.exists(IMAGES):
        return []
    with open(IMAGES) as f:
        return json.load(f)


def cmd_pull(args):
    image = [a for a in args if not a.startswith("-")][0]
    if "@" in image and digest_version(image) is None:
        fail(f"manifest for {image} not found: manifest unknown: the repository has no image with that digest")
    os.makedirs(STATE, exist_ok=True)
    known = images()
    if image not in known:
        with open(IMAGES, "w") as f:
            json.dump(known + [image], f)
    if "--quiet" not in args and "-q" not in args:
        print(f"{image}: pulled (bgemu stand-in engine)")


def cmd_image(args):
    if args[:1] != ["inspect"]:
        fail(f"image {' '.join(args[:1])}: not supported by the stand-in engine")
    image = args[-1]
    if image not in images():
        fail(f"No such image: {image}")
    print(json.dumps([{"RepoTags": [image]}]))


def value_of(args, i):
    arg = args[i]
    if "=" in arg and arg.startswith("--"):
        return arg.split("=", 1)[1], i + 1
    return args[i + 1], i + 2


def cmd_run(args):
    flags_with_value = {
        "--name",
        "--env-file",
        "-e",
        "--env",
        "-v",
        "--volume",
        "-p",
        "--publish",
        "--restart",
        "--ulimit",
        "--user",
        "-u",
        "--workdir",
        "-w",
        "--label",
        "-l",
        "--log-driver",
        "--log-opt",
        "--memory",
        "-m",
        "--cpus",
        "--network",
        "--hostname",
        "--stop-timeout",
        "--health-cmd",
    }
    name, env, publish, env_names, i = None, {}, [], [], 0
    while i < len(args) and args[i].startswith("-"):
        flag = args[i].split("=", 1)[0]
        if flag in ("-d", "--detach", "--rm", "-i", "-t", "--init", "--read-only"):
            i += 1
            continue
        if flag not in flags_with_value:
            fail(f"run {flag}: not supported by the stand-in engine")
        value, i = value_of(args, i)
        if flag == "--name":
            name = value
        elif flag in ("-p", "--publish"):
            publish.append(value)
        elif flag == "--env-file":
            with open(value) as f:
                for line in f:
                    line = line.rstrip("\n")
                    if line and not line.startswith("#") and "=" in line:
                        k, v = line.split("=", 1)
                        env[k] = v
                        env_names.append(k)
        elif flag in ("-e", "--env"):
            k, sep, v = value.partition("=")
            if sep:
                env[k] = v
            elif k in os.environ:
                env[k] = os.environ[k]
            env_names.append(k)
    if i >= len(args):
        fail("run: no image given")
    image, extra = args[i], args[i + 1 :]
    name = name or "bgemu_" + uuid.uuid4().hex[:8]
    existing = load(name)
    if existing is not None:
        fail(f'Conflict. The container name "/{name}" is already in use', 125)
    if image not in images():
        cmd_pull([image, "--quiet"])
    host, port = "0.0.0.0", 8080
    if publish:
        parts = publish[0].split("/")[0].split(":")
        host, port = (parts[0], int(parts[1])) if len(parts) == 3 else ("0.0.0.0", int(parts[0]))
    version, flags = image_version(image)
    argv = (
        [
            sys.executable,
            os.environ.get("BGEMU_DEMO_APP", "/srv/demo_app.py"),
            "--host",
            host,
            "--port",
            str(port),
            "--version",
            version,
        ]
        + flags
        + extra
    )
    os.makedirs(LOGS, exist_ok=True)
    log_path = os.path.join(LOGS, name + ".log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=dict(env, PATH=os.environ.get("PATH", "/usr/bin:/bin")),
        )
    with open(f"/proc/{proc.pid}/stat") as f:
        start_time = f.read().rsplit(")", 1)[1].split()[19]
    container = {
        "Id": uuid.uuid4().hex + uuid.uuid4().hex,
        "Name": name,
        "Image": image,
        "Pid": proc.pid,
        "StartTime": start_time,
        "Port": port,
        "Host": host,
        "Env": sorted(set(env_names)),
        "Args": extra,
    }
    save(container)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1" if host == "0.0.0.0" else host, port), timeout=0.5):
                break
        except OSError:
            time.sleep(0.05)
    print(container["Id"])


def named(args):
    names = [a for a in args if not a.startswith("-")]
    if not names:
        fail("a container name is required")
    return names[-1]


def cmd_inspect(args):
    fmt = None
    rest = []
    i = 0
    while i < len(args):
        if args[i] in ("--format", "-f"):
            fmt, i = args[i + 1], i + 2
        elif args[i].startswith("--format="):
            fmt, i = args[i].split("=", 1)[1], i + 1
        else:
            rest.append(args[i])
            i += 1
    container = load(named(rest))
    if container is None:
        fail(f"No such container: {named(rest)}")
    fields = {
        "{{.State.Status}}": status(container),
        "{{.Config.Image}}": container["Image"],
        "{{.Id}}": container["Id"],
        "{{.Name}}": "/" + container["Name"],
    }
    if fmt is not None:
        if fmt not in fields:
            fail(f"inspect --format {fmt}: not supported by the stand-in engine")
        print(fields[fmt])
        return
    print(
        json.dumps(
            [
                {
                    "Id": container["Id"],
                    "Name": "/" + container["Name"],
                    "State": {"Status": status(container), "Running": alive(container), "Pid": container["Pid"]},
                    "Config": {"Image": container["Image"], "Env": container["Env"]},
                }
            ],
            indent=2,
        )
    )


def stop_process(container, grace):
    if not alive(container):
        return
    try:
        os.killpg(container["Pid"], signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while alive(container) and time.monotonic() < deadline:
        time.sleep(0.05)
    if alive(container):
        try:
            os.killpg(container["Pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def cmd_stop(args):
    grace = 10.0
    for i, arg in enumerate(args):
        if arg in ("-t", "--time"):
            grace = float(args[i + 1])
        elif arg.startswith("--time="):
            grace = float(arg.split("=", 1)[1])
    name = named(args)
    container = load(name)
    if container is None:
        fail(f"No such container: {name}")
    stop_process(container, grace)
    print(name)


def cmd_rm(args):
    name = named(args)
    container = load(name)
    if container is None:
        fail(f"No such container: {name}")
    if alive(container):
        if "-f" not in args and "--force" not in args:
            fail(
                f"cannot remove container {name}: container is running: stop it before removing or force remove",
                1,
            )
        stop_process(container, 0)
    os.unlink(os.path.join(CONTAINERS, name + ".json"))
    print(name)


def cmd_ps(args):
    everything = "-a" in args or "--all" in args
    rows = []
    for entry in sorted(os.listdir(CONTAINERS)) if os.path.isdir(CONTAINERS) else []:
        if entry.endswith(".json"):
            container = load(entry[:-5])
            if container and (everything or alive(container)):
                rows.append(container)
    if "-q" in args or "--quiet" in args:
        for container in rows:
            print(container["Id"][:12])
        return
    print("CONTAINER ID  IMAGE  STATUS  NAMES")
    for container in rows:
        print(f"{container['Id'][:12]}  {container['Image']}  {status(container)}  {container['Name']}")


def cmd_logs(args):
    tail = None
    for i, arg in enumerate(args):
        if arg in ("--tail", "-n"):
            tail = int(args[i + 1])
    name = named(args)
    if load(name) is None:
        fail(f"No such container: {name}")
    path = os.path.join(LOGS, name + ".log")
    lines = open(path, errors="replace").read().splitlines() if os.path.exists(path) else []
    for line in lines[-tail:] if tail else lines:
        print(line)


def main(argv):
    if not argv:
        fail("usage: docker COMMAND (bgemu stand-in engine)")
    command, args = argv[0], argv[1:]
    if command == "container" and args:
        command, args = args[0], args[1:]
    handlers = {
        "run": cmd_run,
        "inspect": cmd_inspect,
        "stop": cmd_stop,
        "rm": cmd_rm,
        "ps": cmd_ps,
        "logs": cmd_logs,
        "pull": cmd_pull,
        "image": cmd_image,
    }
    if command == "version":
        print("bgemu stand-in engine 1.0 (docker CLI subset)")
    elif command == "login":
        sys.stdin.read()
        print("Login Succeeded")
    elif command in handlers:
        handlers[command](args)
    else:
        fail(f"{command}: not supported by the stand-in engine")


if __name__ == "__main__":
    main(sys.argv[1:])
