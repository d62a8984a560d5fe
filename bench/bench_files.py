"""Files are streamed both ways, never read whole into memory: measure it.

Uploads a file of ``--size-mib`` MiB through the SDK (``run.upload_file``), downloads it back
(``run.download_file``), checks the bytes, and reports throughput and the peak resident memory
(VmHWM) of this client and of the server's worker processes.

    # a server to measure, in another terminal (one worker, so its peak is the upload's):
    STUDIO_DATA_DIR=$(mktemp -d) .venv/bin/python manage.py migrate -v0
    .venv/bin/python manage.py bootstrap --config /tmp/bench-files.json --url http://127.0.0.1:8767
    .venv/bin/gunicorn studio.wsgi -b 127.0.0.1:8767 -w 1
    # then
    .venv/bin/python bench/bench_files.py --config /tmp/bench-files.json --size-mib 1024 \
        --server-pids $(pgrep -f 'gunicorn studio.wsgi -b 127.0.0.1:8767' | tr '\\n' ' ')
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from pathlib import Path

from runs.sdk import Experiment, Workspace

CHUNK = 1024 * 1024


def peak_rss_mib(pid: int | str = "self") -> float:
    """The process's peak resident set size so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def write_file(path: Path, size_mib: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(CHUNK)
    with path.open("wb") as file:
        for index in range(size_mib):
            chunk = block[index % 256 :] + block[: index % 256]  # not all alike, cheap to make
            file.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="SDK config JSON (url, token, workspace)")
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--server-pids", nargs="*", type=int, default=[], help="gunicorn processes to watch")
    args = parser.parse_args()

    ws = Workspace.from_config(args.config)
    run = Experiment(ws, "bench-files").start_logging(display_name=f"{args.size_mib} MiB round trip")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "big.bin"
        expected = write_file(source, args.size_mib)
        client_before = peak_rss_mib()
        servers_before = {pid: peak_rss_mib(pid) for pid in args.server_pids}

        started = time.perf_counter()
        run.upload_file("outputs/big.bin", source)
        upload_s = time.perf_counter() - started
        servers_after_upload = {pid: peak_rss_mib(pid) for pid in args.server_pids}

        started = time.perf_counter()
        target = run.download_file("outputs/big.bin", Path(folder) / "back.bin")
        download_s = time.perf_counter() - started
        assert sha256_of(target) == expected, "the downloaded bytes differ"
        client_after = peak_rss_mib()
        servers_after = {pid: peak_rss_mib(pid) for pid in args.server_pids}
    run.complete()

    print(f"| file | {args.size_mib} MiB, bytes checked with SHA-256 |")
    print("|---|---|")
    print(f"| upload | {upload_s:.1f} s, {args.size_mib / upload_s:.0f} MiB/s |")
    print(f"| download | {download_s:.1f} s, {args.size_mib / download_s:.0f} MiB/s |")
    print(f"| client peak RSS | {client_before:.0f} MiB before, {client_after:.0f} MiB after |")
    for pid in args.server_pids:
        print(
            f"| server pid {pid} peak RSS | {servers_before[pid]:.0f} MiB before, "
            f"{servers_after_upload[pid]:.0f} MiB after upload, {servers_after[pid]:.0f} MiB after download |"
        )


if __name__ == "__main__":
    main()
