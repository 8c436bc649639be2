"""Sandbox images: which image runs each SDK language, and how to build them.

Names: ``DEFAULT_IMAGES`` holds the runbook's names (``molam/sim-node:2025-01``, ...); for one
language, ``SIMTUI_IMAGE_<LANG>`` replaces it (``SIMTUI_IMAGE_PYTHON=registry/sim-py:2025-02``).

Building (``simcore images build``): one Dockerfile per runtime in ``docker/<name>/`` at the
top of the checkout, built from a context assembled in a temporary folder (the Dockerfile and
``sdk/``, a copy of this package's ``sdk/<language>/``). Why not the repository as context: the
runner is package data, so the same code works from a checkout or an installed package; the
daemon receives a few kilobytes instead of the tree with its ``.venv``; and the Dockerfiles
do not depend on where the runner sits in the repository.

Offline (no registry): the base is a Debian root filesystem made with ``debootstrap`` from the
machine's own apt mirror, with python3 and nodejs, imported as ``molam/sim-base:bookworm``;
the runtime images are then built ``FROM`` it. Every image carries a label with the digest
of its build context, so a build skips the images that are present and current.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from simcore.errors import ConfigError, SimError


@dataclass(frozen=True)
class Runtime:
    language: str
    default_image: str
    dockerfile_dir: str
    """Folder under ``docker/`` holding the Dockerfile."""


RUNTIMES: Mapping[str, Runtime] = MappingProxyType(
    {
        "node": Runtime("node", "molam/sim-node:2025-01", "sim-node"),
        "python": Runtime("python", "molam/sim-py:2025-01", "sim-py"),
    }
)
DEFAULT_IMAGES: Mapping[str, str] = MappingProxyType(
    {lang: rt.default_image for lang, rt in RUNTIMES.items()}
)

BASE_IMAGE = "molam/sim-base:bookworm"
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "nodejs")
IMAGE_PREFIX = "molam/sim-"
DIGEST_LABEL = "io.molam.simtui.context-digest"
BASE_LABEL = "io.molam.simtui.base-image"

# A deliberately loose check (registry host, port, path, tag, digest): it catches blanks,
# spaces and shell fragments in a variable, and leaves the full grammar to the engine.
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}")


def image_env_var(language: str) -> str:
    return "SIMTUI_IMAGE_" + re.sub(r"[^A-Z0-9]", "_", language.upper())


def image_for(language: str, environ: Mapping[str, str] | None = None) -> str:
    """The image that runs ``language``'s SDK: ``SIMTUI_IMAGE_<LANG>`` or the default."""
    env = os.environ if environ is None else environ
    var = image_env_var(language)
    value = env.get(var, "").strip()
    if value:
        if not _IMAGE_REF.fullmatch(value):
            raise ConfigError(f"{var}: {value!r} is not an image reference")
        return value
    try:
        return DEFAULT_IMAGES[language]
    except KeyError:
        known = ", ".join(DEFAULT_IMAGES)
        raise SimError(
            f"no sandbox image for SDK language {language!r} (known: {known}; or set {var})"
        ) from None


def sandbox_images(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    return tuple(image_for(lang, environ) for lang in RUNTIMES)


class _ConfiguredImages:
    """The configured image of every runtime, read from the environment at each use.

    Not a tuple computed at import: a bad ``SIMTUI_IMAGE_*`` must surface as a ConfigError
    where a command handles it, not as a traceback while the CLI imports its modules.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(sandbox_images())

    def __len__(self) -> int:
        return len(RUNTIMES)

    def __contains__(self, name: object) -> bool:
        return name in sandbox_images()

    def __repr__(self) -> str:
        return f"SANDBOX_IMAGES{sandbox_images()!r}"


SANDBOX_IMAGES = _ConfiguredImages()


# --- engine ---------------------------------------------------------------------------------


class DockerUnavailable(SimError):
    """No Docker engine answers."""

    http_status = 503


class ImageBuildError(SimError):
    """A build step failed; ``log_tail`` holds its last output lines."""

    def __init__(self, message: str, log_tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail or []


def _engine_reason(exc: BaseException) -> str:
    """A short reason from the nested requests/urllib3 errors the docker SDK raises."""
    host = _engine_host()
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        err = pending.pop(0)
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, FileNotFoundError):
            return f"no socket at {host}"
        if isinstance(err, PermissionError):
            return f"permission denied on {host}"
        if isinstance(err, ConnectionRefusedError):
            return f"connection refused at {host}"
        nested = [a for a in err.args if isinstance(a, BaseException)]
        pending.extend(e for e in (err.__cause__, err.__context__, *nested) if e is not None)
    text = " ".join(str(exc).split())
    return f"{host}: {text[:200]}"


def _engine_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def _unix_socket_problem(host: str) -> str | None:
    """Why the engine's Unix socket refuses a connection, or None if it accepts one.

    Checked before the docker SDK connects: it answers with the precise reason, and the SDK
    leaks its socket when the connection fails (a ResourceWarning in every caller).
    """
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(3)
        try:
            probe.connect(path)
        except FileNotFoundError:
            return f"no socket at {host}"
        except PermissionError:
            return f"permission denied on {host}"
        except ConnectionRefusedError:
            return f"connection refused at {host} (no daemon behind the socket)"
        except OSError as exc:
            return f"{host}: {exc.strerror or exc}"
    return None


def docker_client(timeout: int = 600) -> Any:
    """A docker SDK client whose engine answered a ping.

    The default timeout is long because it bounds each read during an image import or
    build, not only the ping.
    """
    try:
        # Imported from the submodules: with a top-level `docker/` folder (the Dockerfiles)
        # in the checkout, mypy would take `docker` for that namespace package.
        from docker.client import DockerClient
        from docker.errors import DockerException
    except ImportError:
        raise DockerUnavailable(
            "docker engine not reachable: the `docker` Python package is not installed"
        ) from None
    host = _engine_host()
    if host.startswith("unix://"):
        problem = _unix_socket_problem(host)
        if problem:
            raise DockerUnavailable(f"docker engine not reachable: {problem}")
    try:
        client = DockerClient.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:  # requests' errors are OSErrors
        raise DockerUnavailable(f"docker engine not reachable: {_engine_reason(exc)}") from None
    return client


@dataclass(frozen=True)
class ImageInfo:
    name: str
    id: str
    size: int
    created: str
    """UTC, ``YYYY-MM-DD HH:MM:SS``."""


def list_images(client: Any) -> list[ImageInfo]:
    """The ``molam/sim-*`` images and the configured sandbox images present on the engine."""
    wanted = set(sandbox_images())
    found: list[ImageInfo] = []
    for image in client.images.list():
        for tag in image.tags:
            if tag.startswith(IMAGE_PREFIX) or tag in wanted:
                created = str(image.attrs.get("Created", ""))[:19].replace("T", " ")
                found.append(
                    ImageInfo(
                        name=str(tag),
                        id=str(image.short_id).removeprefix("sha256:"),
                        size=int(image.attrs.get("Size", 0)),
                        created=created,
                    )
                )
    return sorted(found, key=lambda i: i.name)


def _image_or_none(client: Any, name: str) -> Any:
    from docker.errors import ImageNotFound

    try:
        return client.images.get(name)
    except ImageNotFound:
        return None


def _remove_replaced(client: Any, old: Any, name: str) -> None:
    """Drop the image a rebuild replaced, so repeated --force builds do not fill the disk."""
    from docker.errors import APIError

    new = _image_or_none(client, name)
    if old is None or new is None or old.id == new.id:
        return
    try:
        client.images.remove(old.id)
    except APIError:
        pass  # still tagged elsewhere, or used by a container or a child image: keep it


# --- offline base ---------------------------------------------------------------------------

SOURCES_DIR = Path("/etc/apt")
_USABLE_SCHEMES = ("http://", "https://", "file:")


@dataclass(frozen=True)
class AptSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None


def _deb822(text: str) -> list[dict[str, str]]:
    """Paragraphs of a deb822 file (``*.sources``) as lower-cased field -> value."""
    paragraphs: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key: str | None = None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                paragraphs.append(current)
            current, key = {}, None
            continue
        if line[0] in " \t":
            if key is not None:
                current[key] += "\n" + line.strip()
            continue
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip().lower()
            current[key] = value.strip()
    if current:
        paragraphs.append(current)
    return paragraphs


def _keyring_path(value: str | None) -> str | None:
    # Signed-By may also be a fingerprint or an inline key block: only a file path is usable.
    if value and "\n" not in value and value.startswith("/"):
        return value
    return None


def _sources_file(text: str) -> list[AptSource]:
    found = []
    for para in _deb822(text):
        if para.get("enabled", "yes").lower() == "no":
            continue
        if "deb" not in para.get("types", "").split():
            continue
        for uri in para.get("uris", "").split():
            found.append(
                AptSource(
                    uri=uri,
                    suites=tuple(para.get("suites", "").split()),
                    components=tuple(para.get("components", "").split()),
                    signed_by=_keyring_path(para.get("signed-by")),
                )
            )
    return found


def _list_file(text: str) -> list[AptSource]:
    """One-line sources: ``deb [signed-by=/k.gpg arch=amd64] URI SUITE COMPONENT...``."""
    found = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        options: dict[str, str] = {}
        match = re.fullmatch(r"(\S+)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)", line)
        if not match or match.group(1) != "deb":
            continue
        for option in (match.group(2) or "").split():
            name, _, value = option.partition("=")
            options[name.lower()] = value
        found.append(
            AptSource(
                uri=match.group(3),
                suites=(match.group(4),),
                components=tuple(match.group(5).split()),
                signed_by=_keyring_path(options.get("signed-by")),
            )
        )
    return found


def apt_sources(etc_apt: Path = SOURCES_DIR) -> list[AptSource]:
    """The machine's apt sources, in apt's own reading order (files apt ignores skipped)."""
    files = [etc_apt / "sources.list"]
    listing = etc_apt / "sources.list.d"
    if listing.is_dir():
        files.extend(sorted(listing.iterdir()))
    found: list[AptSource] = []
    for path in files:
        if path.suffix not in (".list", ".sources") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found.extend(_sources_file(text) if path.suffix == ".sources" else _list_file(text))
    return found


def debian_mirror(suite: str = BASE_SUITE, etc_apt: Path = SOURCES_DIR) -> AptSource:
    """The first configured Debian mirror that serves ``suite`` ``main``."""
    for source in apt_sources(etc_apt):
        if (
            suite in source.suites
            and "main" in source.components
            and source.uri.startswith(_USABLE_SCHEMES)
        ):
            return source
    raise SimError(
        f"no Debian {suite} mirror with `main` in {etc_apt}/sources.list(.d); pass --mirror URL"
    )


def _mounts_under(root: Path) -> list[str]:
    """Mount points inside ``root``, deepest first (debootstrap mounts /proc and /sys)."""
    top = str(root)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == top or point.startswith(top + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _remove_rootfs(root: Path) -> None:
    # Never recurse into a still-mounted /proc or /sys of the chroot: unmount first, and
    # leave the folder in place if that fails.
    for point in _mounts_under(root):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    if _mounts_under(root):
        return
    shutil.rmtree(root, ignore_errors=True)


def _trim_rootfs(root: Path) -> None:
    """Drop what a sandbox never needs, and what would leak the build machine."""
    for folder in (
        "var/cache/apt",
        "var/lib/apt/lists",
        "usr/share/man",
        "usr/share/info",
        "usr/share/locale",
        "var/log",
    ):
        base = root / folder
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.is_file() or path.is_symlink():
                path.unlink()
    # Documentation goes, licences stay with the binaries they cover (as debian:slim does).
    doc = root / "usr/share/doc"
    if doc.is_dir():
        for path in doc.rglob("*"):
            if (path.is_file() or path.is_symlink()) and path.name != "copyright":
                path.unlink()
    # debootstrap copies the host's hostname and resolver; the engine provides its own at run
    # time. The mirror URI may carry credentials or internal host names.
    for name in ("etc/hostname", "etc/resolv.conf"):
        target = root / name
        if target.exists() or target.is_symlink():
            target.unlink()
            target.write_text("")
    (root / "etc/apt/sources.list").write_text(
        f"# Debian {BASE_SUITE} base built offline by `simcore images build --offline`;\n"
        "# the sandbox has no network, so no apt source is configured.\n"
    )


def _debootstrap(root: Path, source: AptSource, timeout_s: int) -> None:
    command = [
        "debootstrap",
        "--variant=minbase",
        "--components=main",
        f"--include={','.join(BASE_PACKAGES)}",
    ]
    if source.signed_by and Path(source.signed_by).is_file():
        command.append(f"--keyring={source.signed_by}")
    command += [BASE_SUITE, str(root), source.uri]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise ImageBuildError(f"debootstrap did not finish within {timeout_s}s") from None
    if done.returncode != 0:
        lines = (done.stdout + done.stderr).splitlines()
        last = next((ln for ln in reversed(lines) if ln.startswith("E:")), "")
        raise ImageBuildError(
            f"debootstrap {BASE_SUITE} from {source.uri} failed"
            + (f": {last[2:].strip()}" if last else f" (exit {done.returncode})"),
            lines[-30:],
        )


def _import_rootfs(client: Any, root: Path, name: str) -> None:
    """``tar -C root -c . | docker import - name``, streamed: no tarball on disk."""
    repository, _, tag = name.rpartition(":")
    # --numeric-owner: ownership must come from the rootfs, not from the host's user names;
    # --one-file-system: never archive a mount left inside the chroot.
    tar = subprocess.Popen(
        ["tar", "--numeric-owner", "--one-file-system", "-C", str(root), "-cf", "-", "."],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tar.stdout is not None and tar.stderr is not None
    stdout = tar.stdout
    chunks = iter(lambda: stdout.read(1 << 20), b"")
    try:
        client.api.import_image(
            src=chunks,
            repository=repository,
            tag=tag,
            changes=[
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "ENV LANG=C.UTF-8",
                'CMD ["bash"]',
            ],
            stream_src=True,
        )
    finally:
        stdout.close()
        errors = tar.stderr.read().decode(errors="replace")
        status = tar.wait()
    if status != 0:
        raise ImageBuildError(f"tar of the base rootfs failed: {errors.strip()[:200]}")


def build_base(
    client: Any,
    *,
    mirror: str | None,
    report: Callable[[str], None],
    timings: dict[str, float],
    debootstrap_timeout_s: int = 1200,
) -> None:
    """Make ``BASE_IMAGE`` with debootstrap from the configured (or given) Debian mirror."""
    if shutil.which("debootstrap") is None:
        raise SimError(
            "debootstrap not found: install it (apt-get install debootstrap) "
            "or build without --offline"
        )
    if os.geteuid() != 0:
        raise SimError("debootstrap needs root: run the offline build as root")
    source = AptSource(mirror, (BASE_SUITE,), ("main",), None) if mirror else debian_mirror()
    # /var/tmp rather than /tmp: /tmp is often a tmpfs mounted noexec, where the chroot's
    # binaries could not run during debootstrap's second stage.
    root = Path(tempfile.mkdtemp(prefix="simtui-rootfs-", dir="/var/tmp"))
    try:
        report(f"debootstrap {BASE_SUITE} (+{', '.join(BASE_PACKAGES)}) from {source.uri} ...")
        start = time.monotonic()
        _debootstrap(root / "rootfs", source, debootstrap_timeout_s)
        timings["debootstrap"] = time.monotonic() - start
        report(f"  debootstrap done in {timings['debootstrap']:.1f}s")
        _trim_rootfs(root / "rootfs")
        start = time.monotonic()
        _import_rootfs(client, root / "rootfs", BASE_IMAGE)
        timings["import"] = time.monotonic() - start
        report(f"  imported {BASE_IMAGE} in {timings['import']:.1f}s")
    finally:
        _remove_rootfs(root)


# --- runtime images -------------------------------------------------------------------------

_CONTEXT_IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.pyo", "node_modules", ".pytest_cache", ".mypy_cache"
)


def docker_dir() -> Path:
    """``docker/`` at the top of the checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "docker"


def sdk_dir(language: str) -> Path:
    return Path(__file__).resolve().parent / "sdk" / language


def assemble_context(runtime: Runtime, dest: Path) -> str:
    """Write the build context of ``runtime`` into ``dest``; return its digest."""
    dockerfile = docker_dir() / runtime.dockerfile_dir / "Dockerfile"
    if not dockerfile.is_file():
        raise SimError(
            f"Dockerfile not found: {dockerfile} (building images needs a source checkout)"
        )
    shutil.copyfile(dockerfile, dest / "Dockerfile")
    source, target = sdk_dir(runtime.language), dest / "sdk"
    if source.is_dir():
        # symlinks=True: a link is copied as a link, never the file it points to, so nothing
        # outside the runner folder can end up in the image.
        shutil.copytree(source, target, symlinks=True, ignore=_CONTEXT_IGNORE)
    else:
        target.mkdir()
    # Modes normalised: the runner must be readable by the sandbox user whatever the umask
    # of the checkout, and the digest must not depend on it either.
    target.chmod(0o755)
    for path in target.rglob("*"):
        if path.is_symlink():
            continue
        if path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o111 else 0o644)
    return _digest(dest)


def _digest(context: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(context.rglob("*")):
        rel = path.relative_to(context).as_posix()
        if path.is_symlink():
            h.update(f"L {rel} {os.readlink(path)}\n".encode())
        elif path.is_file():
            h.update(f"F {rel} {path.stat().st_mode & 0o777:o}\n".encode())
            h.update(path.read_bytes())
        else:
            h.update(f"D {rel}\n".encode())
    return h.hexdigest()


def _docker_build(
    client: Any, context: Path, tag: str, base: str | None, digest: str, force: bool
) -> None:
    tail: deque[str] = deque(maxlen=30)
    chunks = client.api.build(
        path=str(context),
        tag=tag,
        rm=True,
        forcerm=True,
        nocache=force,
        pull=False,
        buildargs={"BASE_IMAGE": base} if base else None,
        labels={DIGEST_LABEL: digest, BASE_LABEL: base or "default"},
        decode=True,
    )
    for chunk in chunks:
        if "stream" in chunk:
            tail.extend(line for line in str(chunk["stream"]).splitlines() if line.strip())
        if "error" in chunk:
            message = " ".join(str(chunk["error"]).split())[:300]
            hint = ""
            if base is None and re.search(r"pull|registry|manifest|dial tcp|lookup", message):
                hint = " (no registry reachable? try: simcore images build --offline)"
            raise ImageBuildError(f"docker build {tag} failed: {message}{hint}", list(tail))


@dataclass(frozen=True)
class BuildOutcome:
    language: str
    image: str
    built: bool
    seconds: float


def build_images(
    client: Any,
    *,
    languages: list[str] | None = None,
    offline: bool = False,
    force: bool = False,
    mirror: str | None = None,
    report: Callable[[str], None] = lambda _line: None,
    timings: dict[str, float] | None = None,
) -> list[BuildOutcome]:
    """Build the sandbox images that are missing or stale (all of them with ``force``).

    ``timings`` receives the seconds spent in ``debootstrap``, ``import`` and each build.
    """
    timings = {} if timings is None else timings
    wanted = languages or list(RUNTIMES)
    unknown = [lang for lang in wanted if lang not in RUNTIMES]
    if unknown:
        raise SimError(f"no sandbox image for SDK language {unknown[0]!r}")
    outcomes: list[BuildOutcome] = []
    base_ready = False
    old_base: Any = None
    for language in dict.fromkeys(wanted):
        runtime, tag = RUNTIMES[language], image_for(language)
        with tempfile.TemporaryDirectory(prefix="simtui-ctx-") as tmp:
            context = Path(tmp)
            digest = assemble_context(runtime, context)
            if not any((context / "sdk").iterdir()):
                report(f"warning: no SDK runner in {sdk_dir(language)}; image built without it")
            existing = _image_or_none(client, tag)
            labels = (existing.labels or {}) if existing is not None else {}
            if existing is not None and labels.get(DIGEST_LABEL) == digest and not force:
                report(f"{tag}: up to date ({existing.short_id.removeprefix('sha256:')})")
                outcomes.append(BuildOutcome(language, tag, False, 0.0))
                continue
            base: str | None = None
            if offline:
                base = BASE_IMAGE
                if not base_ready and (force or _image_or_none(client, BASE_IMAGE) is None):
                    old_base = _image_or_none(client, BASE_IMAGE)
                    build_base(client, mirror=mirror, report=report, timings=timings)
                base_ready = True
            report(f"building {tag} FROM {base or 'the Dockerfile default'} ...")
            start = time.monotonic()
            _docker_build(client, context, tag, base, digest, force)
            seconds = time.monotonic() - start
            timings[f"build {tag}"] = seconds
            _remove_replaced(client, existing, tag)
            report(f"  built {tag} in {seconds:.1f}s")
            outcomes.append(BuildOutcome(language, tag, True, seconds))
    # The replaced base can only go once no rebuilt image still has it as parent.
    _remove_replaced(client, old_base, BASE_IMAGE)
    return outcomes
