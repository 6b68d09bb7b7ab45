"""bluegreen.aws AWS emulator: moto's server with the behaviour this collection needs added in-process.

Start it with ``python -m bgemu --port N`` (``tests/emulator`` on ``PYTHONPATH``); it binds to loopback only.
What it adds, and what it does not model, is in ``docs/emulator.md``.
"""

MOTO_VERSION = "5.2.5"  # the exact moto these patches were written against; see check_moto()


def check_moto():
    """Fail loudly when moto is not the version the extension was built for."""
    import moto

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"bgemu extends moto {MOTO_VERSION} in-process but moto {moto.__version__} is installed: "
            "re-check every patch in tests/emulator/bgemu against the new moto, then update MOTO_VERSION "
            "and the pin in requirements-dev.txt together"
        )


def install(*modules):
    """Apply each module's PATCHES (owner, attribute, replacement) to moto."""
    for module in modules:
        for owner, name, function in module.PATCHES:
            setattr(owner, name, function)
