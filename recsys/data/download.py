"""Download GroupLens archives: progress, checksum, resumable ``.part`` files, atomic extraction.

``download_dataset("ml-100k", data_dir)`` puts ``<data_dir>/ml-100k/`` in place:

1. the archive is fetched to ``<data_dir>/.downloads/ml-100k.zip.part``; an interrupted transfer
   (dropped connection, killed process) continues from the bytes already there with an HTTP
   ``Range`` request, both within one call (``retries``) and on the next call;
2. the complete file is verified against the registry checksum (``md5:`` or ``sha256:``; for
   archives GroupLens refreshes in place, the published ``<url>.md5`` file) and only then renamed
   to ``ml-100k.zip``;
3. it is extracted into a temporary folder inside the data directory, and the dataset folder is
   renamed into place, so a half-extracted dataset is never visible. An existing incomplete
   folder is moved aside to ``<folder>.replaced-<time>``, not deleted. Archives are checked
   first: entries leaving the folder, symbolic links and device files are refused, and the total
   unpacked size is capped (:func:`unpack_limit`: 10x the archive, at least 64 MiB,
   ``$RECSYS_MAX_UNPACKED_MB`` to change it), so a zip bomb cannot fill the disk.

A dataset already present is used as is. Offline, the error says what to download and where to
put it.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from recsys import errors
from recsys.cache import file_lock
from recsys.config import data_dir as resolve_data_dir
from recsys.errors import InvalidParameter
from recsys.progress import Progress

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 16
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


class DownloadError(errors.DownloadError):
    """The transfer failed (offline, HTTP error, interrupted more often than `retries`)."""


class ChecksumMismatch(DownloadError, ValueError):
    """The downloaded file's digest differs from the published one."""


def file_digest(path: str | os.PathLike, algorithm: str = "md5") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def parse_checksum(checksum: str) -> tuple[str, str]:
    """ "md5:<hex>" / "sha256:<hex>" (or a bare hex digest, algorithm by length) -> (algorithm, hex)."""
    if ":" in checksum:
        algorithm, value = checksum.split(":", 1)
    else:
        value = checksum
        algorithm = {32: "md5", 64: "sha256"}.get(len(checksum.strip()), "")
    algorithm, value = algorithm.strip().lower(), value.strip().lower()
    if algorithm not in ("md5", "sha256") or not re.fullmatch(r"[0-9a-f]+", value):
        raise InvalidParameter(f"unsupported checksum {checksum!r}: use 'md5:<hex>' or 'sha256:<hex>'")
    return algorithm, value


def verify_checksum(path: str | os.PathLike, checksum: str) -> None:
    algorithm, expected = parse_checksum(checksum)
    actual = file_digest(path, algorithm)
    if actual != expected:
        raise ChecksumMismatch(
            f"{path}: {algorithm} is {actual}, expected {expected}; the download "
            f"is corrupt or the file was changed upstream (it was deleted; try again)"
        )


def _offline_message(url: str, reason: object, destination: Path) -> str:
    return (
        f"cannot download {url} ({reason}); is this machine offline? You can also download it "
        f"elsewhere and put it at {destination}, then run the same command again"
    )


def download_file(
    url: str,
    destination: str | os.PathLike,
    checksum: str | None = None,
    progress: Progress | None = None,
    retries: int = 3,
    timeout: float = 30.0,
    chunk_size: int = CHUNK_SIZE,
) -> Path:
    """Fetch `url` to `destination`, resuming ``<destination>.part``; verify `checksum` if given."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.is_file():
        if checksum is None:
            return destination
        try:
            verify_checksum(destination, checksum)
            return destination
        except ChecksumMismatch:
            log.warning("%s does not match its checksum: downloading it again", destination)
            destination.unlink()
    part = destination.with_name(destination.name + ".part")
    attempt = 0
    while True:
        try:
            complete = _transfer(url, part, progress, timeout, chunk_size)
        except urllib.error.HTTPError as exc:
            raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise DownloadError(_offline_message(url, exc.reason, destination)) from None
        except (http.client.HTTPException, ConnectionError, TimeoutError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:  # our disk, not the network
                if exc.filename is None:
                    exc.filename = str(part)
                raise errors.StorageError(errors.describe_os_error(exc)) from exc
            complete, problem = False, exc
        else:
            problem = "connection closed early"
        if complete:
            break
        attempt += 1
        log.info("download of %s interrupted (%s): resuming, attempt %d of %d", url, problem, attempt, retries)
        if attempt > retries:
            size = part.stat().st_size if part.exists() else 0
            raise DownloadError(
                f"download of {url} interrupted ({problem}); {size} bytes kept in {part}, run again to resume"
            )
        time.sleep(min(0.2 * attempt, 2.0))
    if checksum is not None:
        try:
            verify_checksum(part, checksum)
        except ChecksumMismatch:
            part.unlink()
            raise
    os.replace(part, destination)
    return destination


def _transfer(url: str, part: Path, progress: Progress | None, timeout: float, chunk_size: int) -> bool:
    """One HTTP request appending to `part`; True when the file is complete."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "recsys-dashboard"})
    if have:
        log.info("resuming %s from byte %d (%s)", url, have, part)
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the part file is already complete
            return True
        raise
    with response:
        if have and response.status != 206:
            log.info("%s ignored the Range request: downloading from the start", url)
            have = 0  # the server ignored Range: start over
        total = None
        content_range = response.headers.get("Content-Range", "")
        match = re.search(r"/(\d+)\s*$", content_range)
        if match:
            total = int(match.group(1))
        elif response.headers.get("Content-Length"):
            total = have + int(response.headers["Content-Length"])
        done = have
        with open(part, "ab" if have else "wb") as stream:
            while True:
                chunk = response.read(chunk_size)
                if not chunk:
                    break
                stream.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total or done, f"downloading {url.rsplit('/', 1)[-1]}")
    return total is None or done >= total


def fetch_published_md5(url: str, timeout: float = 15.0) -> str | None:
    """The digest in GroupLens' ``<archive>.md5`` file ("MD5 (ml-1m.zip) = <hex>"), None if absent."""
    try:
        with urllib.request.urlopen(url + ".md5", timeout=timeout) as response:
            text = response.read(4096).decode("ascii", "replace")
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        return None
    match = re.search(r"\b([0-9a-fA-F]{32})\b", text)
    return f"md5:{match.group(1).lower()}" if match else None


# ---- extraction ---------------------------------------------------------------------------------
#: an archive may unpack to at most max(MIN_UNPACK_LIMIT, UNPACK_RATIO x its own size), unless
#: $RECSYS_MAX_UNPACKED_MB says otherwise. MovieLens archives unpack to 3-5x their size (ML-25M:
#: 262 MB -> 1.2 GB); a zip bomb unpacks to hundreds or thousands of times its size.
UNPACK_RATIO = 10
MIN_UNPACK_LIMIT = 64 << 20
_LINK_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
}


def unpack_limit(archive_size: int) -> int:
    """Bytes an archive of `archive_size` bytes may unpack to (see :data:`UNPACK_RATIO`)."""
    from recsys.config import max_unpacked_bytes

    return max_unpacked_bytes(max(MIN_UNPACK_LIMIT, UNPACK_RATIO * int(archive_size)))


def _checked_members(bundle: zipfile.ZipFile, archive: Path, limit: int) -> list[zipfile.ZipInfo]:
    """The archive's entries, refusing unsafe names, links, device files and a total size above `limit`.

    Zip has no hard links; a Unix zip stores a symbolic link as an entry whose mode says S_IFLNK
    (its "content" is the link target), which ``extractall`` would write as a plain file, and
    which other tools would follow out of the folder.
    """
    members, total = [], 0
    for info in bundle.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if (
            not name
            or "\x00" in name
            or name.startswith(("/", "\\"))
            or ".." in parts
            or ":" in (parts[0] if parts else "")
        ):
            raise DownloadError(f"{archive}: unsafe path {name!r} in archive (outside the extraction folder); refused")
        kind = _LINK_KINDS.get(stat.S_IFMT(info.external_attr >> 16))
        if kind:  # Unix mode bits in the upper half of external_attr
            raise DownloadError(
                f"{archive}: entry {name!r} is {kind}; archives with links or special files are refused"
            )
        total += info.file_size
        if total > limit:
            raise DownloadError(
                f"{archive}: unpacks to more than {limit / 2**20:,.0f} MiB (declared {_declared_mib(bundle)} MiB "
                f"from {archive.stat().st_size / 2**20:,.1f} MiB: a zip bomb or the wrong file); refused "
                f"(raise ${_unpack_env()} if this archive is genuine)"
            )
        members.append(info)
    return members


def _declared_mib(bundle: zipfile.ZipFile) -> str:
    return f"{sum(i.file_size for i in bundle.infolist()) / 2**20:,.0f}"


def _unpack_env() -> str:
    from recsys.config import MAX_UNPACKED_ENV

    return MAX_UNPACKED_ENV


def _unpack(bundle: zipfile.ZipFile, members: list[zipfile.ZipInfo], staging: Path, archive: Path, limit: int):
    """Write `members` under `staging`, counting the bytes actually produced (never above `limit`)."""
    written = 0
    for info in members:
        destination = staging.joinpath(*PurePosixPath(info.filename.replace("\\", "/")).parts)
        try:
            if info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(info) as source, open(destination, "xb") as target:
                while chunk := source.read(CHUNK_SIZE * 16):
                    written += len(chunk)
                    if written > limit:
                        raise DownloadError(f"{archive}: unpacks to more than {limit / 2**20:,.0f} MiB; refused")
                    target.write(chunk)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            raise DownloadError(
                f"{archive}: entry {info.filename!r} clashes with an earlier entry ({exc.strerror}); "
                "the archive is malformed"
            ) from None


def extract_archive(
    archive: str | os.PathLike,
    data_dir: str | os.PathLike,
    folder: str,
    max_bytes: int | None = None,
    required: tuple[str, ...] = (),
) -> Path:
    """Extract the zip's top-level `folder` into `data_dir` atomically; returns data_dir/folder.

    Refused with a DownloadError naming the archive and the entry, before anything is visible in
    `data_dir`: paths leaving the folder (zip slip), symbolic links and device files, a total
    size above `max_bytes` (default :func:`unpack_limit`), entries that clash (a file where a
    folder should be), corrupt data, and an archive without the `required` files. Not enough free space is a StorageError saying how much is
    needed.
    """
    archive, root = Path(archive), Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    target = root / folder
    limit = max_bytes if max_bytes is not None else unpack_limit(archive.stat().st_size)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}.", suffix=".extracting", dir=root))
    try:
        try:
            with zipfile.ZipFile(archive) as bundle:
                members = _checked_members(bundle, archive, limit)
                needed = sum(info.file_size for info in members)
                free = shutil.disk_usage(root).free
                if needed > free:
                    raise errors.StorageError(
                        f"cannot extract {archive.name} into {root}: it needs {needed / 2**20:,.0f} MiB, "
                        f"{free / 2**20:,.0f} MiB are free"
                    )
                _unpack(bundle, members, staging, archive, limit)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            raise DownloadError(f"{archive} is not a valid zip archive ({exc}); delete it and retry") from None
        except OSError as exc:
            if isinstance(exc, errors.StorageError):
                raise
            raise errors.StorageError(errors.describe_os_error(exc, "extract into")) from exc
        extracted = staging / folder
        if not extracted.is_dir():
            entries = [p for p in staging.iterdir() if not p.name.startswith("__MACOSX")]
            if len(entries) == 1 and entries[0].is_dir():
                extracted = entries[0]  # archive with another top-level name
            else:
                extracted = staging  # flat archive: the files themselves (moved as a whole below)
        missing = [name for name in required if not (extracted / name).is_file()]
        if missing:
            raise DownloadError(f"{archive.name} does not contain {', '.join(missing)}; is it the right archive?")
        if target.exists():
            aside = root / f"{folder}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
            os.replace(target, aside)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # gone already when it was moved into place
    return target


def download_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
    url: str | None = None,
    checksum: str | None = None,
    keep_archive: bool = False,
    force: bool = False,
    retries: int = 3,
) -> Path:
    """Download and extract a registry dataset into the data directory; returns its folder.

    `url`/`checksum` override the registry (tests point them at a local server).
    """
    from recsys.data.registry import dataset_info, find_dataset_folder

    info = dataset_info(name)
    if info.synthetic:
        raise InvalidParameter(f"{name!r} is generated, not downloaded: run `recsys demo`")
    root = resolve_data_dir(data_dir)
    present = find_dataset_folder(name, root)
    if present is not None and not force:
        log.info("%s already present in %s: nothing to download", name, present)
        if progress:
            progress(1, 1, f"{name} already present in {present}")
        return present
    url = url or info.url
    if checksum is None and url == info.url:
        checksum = info.checksum or fetch_published_md5(url)
    archive = root / ".downloads" / url.rsplit("/", 1)[-1]
    # One download of an archive at a time: a second process waits instead of appending to the
    # same .part file, then finds the dataset in place.
    with file_lock(root / f".download-{name}"):  # a hidden .lock file in the data directory
        present = find_dataset_folder(name, root)
        if present is not None and not force:
            log.info("%s was downloaded by another process meanwhile: %s", name, present)
            return present
        try:
            download_file(url, archive, checksum, progress, retries=retries)
        except ChecksumMismatch:
            raise  # its message already says what to do
        except DownloadError as exc:
            raise DownloadError(
                f"{exc}; or unzip it yourself into {root} so that {root / info.folder / info.required_files[0]} exists."
            ) from None
        if progress:
            progress(1, 1, f"extracting {archive.name}")
        log.info("extracting %s into %s", archive, root / info.folder)
        try:
            target = extract_archive(archive, root, info.folder, required=info.required_files)
        except DownloadError as exc:  # corrupt, refused or the wrong archive: fetched again next time
            archive.unlink(missing_ok=True)
            raise DownloadError(
                f"{exc} (the archive was deleted: run the command again to download it again)"
            ) from None
        if not keep_archive:
            archive.unlink(missing_ok=True)
    missing = [f for f in info.required_files if not (target / f).is_file()]
    if missing:
        raise DownloadError(f"{archive.name} did not contain {', '.join(missing)} (extracted to {target})")
    return target
