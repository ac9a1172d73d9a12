"""Atomic writes: kill -9 mid-write and concurrent readers never see a partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from geopipe.errors import OutputError
from geopipe.io import atomic
from geopipe.io.atomic import (
    TEMP_PREFIX,
    atomic_dir,
    atomic_path,
    atomic_write_text,
    remove_stale_temps,
)
from geopipe.io.geoparquet import write_parquet


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"{TEMP_PREFIX}*"))


def test_atomic_path_writes_and_leaves_no_temp(tmp_path: Path) -> None:
    final = tmp_path / "a.txt"
    with atomic_path(final) as tmp:
        assert tmp.parent == tmp_path and not tmp.exists()
        assert not tmp.name.endswith(".txt")  # never matches a reader's *.txt glob
        tmp.write_text("new")
    assert final.read_text() == "new"
    assert _temps(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert final.stat().st_mode & 0o777 == 0o666 & ~umask


def test_error_in_block_keeps_previous_file(tmp_path: Path) -> None:
    final = tmp_path / "a.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer crashed")
    assert final.read_text() == "old"
    assert _temps(tmp_path) == []


def test_missing_folder_and_missing_output_are_output_errors(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"), atomic_path(tmp_path / "no" / "a"):
        pass
    with pytest.raises(OutputError, match="was not created"), atomic_path(tmp_path / "b"):
        pass
    assert not (tmp_path / "b").exists()


def test_atomic_write_text(tmp_path: Path) -> None:
    p = atomic_write_text(tmp_path / "m.json", '{"a": 1}\n')
    assert p.read_bytes() == b'{"a": 1}\n'


@pytest.mark.parametrize("exchange", [True, False])
def test_atomic_dir_replaces_whole_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool
) -> None:
    if not exchange:  # platforms without renameat2: rename-aside fallback
        monkeypatch.setattr(atomic, "_rename_exchange", lambda a, b: False)
    final = tmp_path / "date=2024-01-01"
    with atomic_dir(final) as tmp:
        (tmp / "old.parquet").write_text("1")
    with atomic_dir(final) as tmp:
        (tmp / "new.parquet").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["new.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["date=2024-01-01"]


def test_atomic_dir_error_keeps_previous_folder(tmp_path: Path) -> None:
    final = tmp_path / "run"
    final.mkdir()
    (final / "keep.txt").write_text("old")
    with pytest.raises(ValueError), atomic_dir(final) as tmp:
        (tmp / "partial.txt").write_text("x")
        raise ValueError("boom")
    assert sorted(p.name for p in final.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_remove_stale_temps_only_removes_old_entries(tmp_path: Path) -> None:
    old = tmp_path / f"{TEMP_PREFIX}x.parquet-abc"
    old.write_text("x")
    past = time.time() - 7200
    os.utime(old, (past, past))
    fresh = tmp_path / f"{TEMP_PREFIX}y.parquet-def"
    fresh.write_text("y")
    keep = tmp_path / "y.parquet"
    keep.write_text("z")
    assert remove_stale_temps(tmp_path, min_age_s=3600) == [old]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fresh.name, keep.name])


_ENDLESS_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pyarrow as pa, pyarrow.parquet as pq
    from geopipe.io.atomic import atomic_path

    final = sys.argv[1]
    rng = np.random.default_rng(0)
    batch = pa.table({"a": rng.random(200_000), "b": rng.random(200_000)})
    with atomic_path(final) as tmp:
        with pq.ParquetWriter(tmp, batch.schema) as writer:
            while True:  # a "large" file that never finishes: we are killed mid-write
                writer.write_table(batch)
    """
)


def test_sigkill_mid_write_leaves_previous_file_intact(tmp_path: Path) -> None:
    final = tmp_path / "fact_indicator.parquet"
    previous = pd.DataFrame({"ucode": ["RWA_0001_V1", "RWA_0002_V1"], "value": [1.5, 2.5]})
    write_parquet(previous, final)
    before = final.read_bytes()

    child = subprocess.Popen([sys.executable, "-c", _ENDLESS_WRITER, str(final)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait until the child is well into the write
            temps = _temps(tmp_path)
            if temps and temps[0].stat().st_size > 8_000_000:
                break
            assert child.poll() is None, "writer exited before it could be killed"
            time.sleep(0.02)
        else:
            pytest.fail("the child never started writing")
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()

    assert final.read_bytes() == before
    pd.testing.assert_frame_equal(pq.read_table(final).to_pandas(), previous)
    leftovers = _temps(tmp_path)
    assert len(leftovers) == 1  # the killed writer's temp; the next cleanup removes it
    with pytest.raises(Exception):  # noqa: B017 - the temp is a torn parquet file
        pq.read_table(leftovers[0])
    assert remove_stale_temps(tmp_path, min_age_s=0) == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


_REWRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from geopipe.io.geoparquet import write_parquet

    final = sys.argv[1]
    for version in range(1, 41):
        n = 20_000 + 5_000 * version
        write_parquet(pd.DataFrame({"version": np.full(n, version), "x": np.arange(n)}), final)
    """
)


def test_concurrent_reader_never_sees_partial_file(tmp_path: Path) -> None:
    final = tmp_path / "adm1.parquet"
    write_parquet(pd.DataFrame({"version": [0] * 20_000, "x": range(20_000)}), final)
    writer = subprocess.Popen([sys.executable, "-c", _REWRITER, str(final)])
    con = duckdb.connect()
    seen = set()
    reads = 0
    try:
        while writer.poll() is None or reads == 0:
            # a reader opens the file once and reads from that handle (POSIX keeps the old
            # inode alive across the rename); pyarrow.read_table(path) may reopen the path
            # between metadata and data, so it is not used here
            with open(final, "rb") as f:
                table = pq.read_table(f)  # raises on a torn file
            rows, lo, hi = con.execute(
                "SELECT count(*), min(version), max(version) FROM read_parquet(?)", [str(final)]
            ).fetchone()
            for n, versions in (
                (table.num_rows, set(table.column("version").to_pylist())),
                (rows, {lo, hi}),
            ):
                assert len(versions) == 1
                version = versions.pop()
                assert n == (20_000 if version == 0 else 20_000 + 5_000 * version)
                seen.add(version)
            reads += 1
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.wait(timeout=60) == 0
    assert pq.read_table(final).column("version")[0].as_py() == 40
    assert len(seen) >= 2  # the reader really overlapped with the rewrites
    assert _temps(tmp_path) == []
