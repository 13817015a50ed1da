"""Files Stillroom writes, against a hostile job file or a hostile data folder (no model).

Faults injected and what was observed before:
- A job file whose `output:` is `../x`, an absolute path or `~/...`: accepted, and the run replaced
  whatever file was there (a shared job file could overwrite ~/.bashrc). Now: refused naming the
  path and the folder unless --allow-outside-output; an existing output needs --force.
- A symbolic link planted at `<out>.partial`: the export wrote through it into the link's target.
  Now: the temporary file is made with mkstemp beside the target and renamed; the link's target is
  untouched. Exports holding prompts and responses were 0644; now 0600.
- A pickle planted as a cached projection in the data folder: unpickled (code execution) when the
  audit map opened. Now: projections are checksummed .npz read with allow_pickle=False; the old
  pickle names are never opened; a damaged file is ignored and the projection refitted.
"""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.audit.projection import COORDS_SUFFIX, PROJECTIONS_SUBDIR, FittedProjection, PcaModel, ProjectionStore
from app.core.audit.selection import export_selection
from app.core.batch.spec import (
    BatchSpecError,
    OutputExistsError,
    OutputOutsideError,
    check_output_free,
    load_spec,
)
from app.core.store import Ledger
from app.core.store.export import export_rows
from app.core.store.queries import iter_generations
from tests.core.records import record

REPO = Path(__file__).resolve().parents[2]
LIBRARY_HASH = "ab" * 32


def job_file(folder: Path, output: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "job.yaml"
    path.write_text(f"name: j\ntemplate: 'Say {{input}}'\ninputs: [a, b]\noutput: '{output}'\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("output", ["../victim.txt", "/tmp/victim.txt", "~/.bashrc", "sub/../../victim.txt"])
def test_a_job_output_outside_its_folder_is_refused(tmp_path: Path, output: str) -> None:
    path = job_file(tmp_path / "shared", output)
    with pytest.raises(OutputOutsideError, match="outside the job's folder"):
        load_spec(path)
    allowed = load_spec(path, allow_outside=True)
    assert Path(allowed.output).is_absolute()


def test_a_symlinked_folder_leading_out_counts_as_outside(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OutputOutsideError):
        load_spec(job_file(tmp_path / "shared", "link/out.jsonl"))


def test_an_output_inside_the_folder_is_accepted_and_an_existing_one_needs_force(tmp_path: Path) -> None:
    spec = load_spec(job_file(tmp_path / "shared", "out/result.jsonl"))
    assert spec.output == str((tmp_path / "shared" / "out" / "result.jsonl").resolve())
    check_output_free(spec.output)  # nothing there yet
    Path(spec.output).parent.mkdir()
    Path(spec.output).write_text("keep me\n", encoding="utf-8")
    with pytest.raises(OutputExistsError, match="exists already"):
        check_output_free(spec.output)
    check_output_free(spec.output, force=True)
    with pytest.raises(BatchSpecError, match="a folder"):
        check_output_free(Path(spec.output).parent, force=True)


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STILLROOM_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "app", *args], capture_output=True, text=True, env=env, cwd=REPO,
                          timeout=120)


def test_batch_run_refuses_outside_and_existing_outputs_before_loading_a_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    Ledger.open(home / "ledger.db").close()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n", encoding="utf-8")
    done = run_cli(home, "batch", "run", str(job_file(tmp_path / "shared", "../victim.txt")))
    assert done.returncode != 0 and "outside the job's folder" in done.stderr and "--allow-outside-output" in done.stderr
    done = run_cli(home, "batch", "run", "--allow-outside-output", str(job_file(tmp_path / "shared", "../victim.txt")))
    assert done.returncode != 0 and "exists already" in done.stderr and "--force" in done.stderr
    assert victim.read_text(encoding="utf-8") == "precious\n"
    assert "Traceback" not in done.stderr


def test_exports_do_not_follow_a_planted_partial_symlink_and_are_owner_only(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    try:
        ledger.append(record(1, prompt="secret prompt", response="secret response"))
        victim = tmp_path / "victim.txt"
        victim.write_text("precious\n", encoding="utf-8")
        for name in ("log.jsonl", "selection.jsonl"):
            (tmp_path / f"{name}.partial").symlink_to(victim)
        out = tmp_path / "log.jsonl"
        assert export_rows(iter_generations(ledger.db), "jsonl", out) == 1
        selection = tmp_path / "selection.jsonl"
        assert export_selection(ledger.db, [1], selection) == 1
    finally:
        ledger.close()
    assert victim.read_text(encoding="utf-8") == "precious\n"
    for path in (out, selection):
        assert "secret prompt" in path.read_text(encoding="utf-8")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary left


class _Planted:
    """Unpickling this writes a marker file: what an attacker's code would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (Path.write_text, (self.marker, "pwned"))


def test_a_planted_pickle_is_never_unpickled_and_pca_round_trips_as_npz(tmp_path: Path) -> None:
    folder = tmp_path / PROJECTIONS_SUBDIR
    folder.mkdir()
    marker = tmp_path / "marker"
    for name in (f"{LIBRARY_HASH[:16]}-pca.pickle", f"{LIBRARY_HASH[:16]}-umap.pickle",
                 f"{LIBRARY_HASH[:16]}-pca-model.npz"):
        (folder / name).write_bytes(pickle.dumps(_Planted(marker)))
    store = ProjectionStore(tmp_path)
    assert store.get(LIBRARY_HASH, "pca") is None and store.get(LIBRARY_HASH, "umap") is None
    assert not marker.exists()

    vectors = np.random.default_rng(1).normal(size=(20, 8)).astype(np.float32)
    fitted = FittedProjection("pca", PcaModel.fit(vectors))
    fitted.coords = {"k1": (1.0, 2.0)}
    store.put(LIBRARY_HASH, fitted)
    store.save_coords(LIBRARY_HASH, "pca")
    again = ProjectionStore(tmp_path).get(LIBRARY_HASH, "pca")
    assert again is not None and again.coords == {"k1": (1.0, 2.0)}
    np.testing.assert_allclose(again.transform(vectors), fitted.transform(vectors))
    for path in folder.glob("*.npz"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # one flipped byte in the saved model: ignored (refit), not trusted
    model_file = next(folder.glob("*-pca-model.npz"))
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model_file.write_bytes(bytes(data))
    assert ProjectionStore(tmp_path).get(LIBRARY_HASH, "pca") is None


def test_umap_coordinates_are_reused_without_a_model_and_new_keys_need_a_refit(tmp_path: Path) -> None:
    store = ProjectionStore(tmp_path)
    store.put(LIBRARY_HASH, FittedProjection("umap", object(), {"a": (0.0, 1.0), "b": (2.0, 3.0)}))
    store.save_coords(LIBRARY_HASH, "umap")
    assert not any(p.name.endswith("-umap-model.npz") for p in (tmp_path / PROJECTIONS_SUBDIR).iterdir())
    loaded = ProjectionStore(tmp_path).get(LIBRARY_HASH, "umap")
    assert loaded is not None and loaded.model is None
    assert loaded.can_place(["a", "b"]) and not loaded.can_place(["a", "c"])
    assert (tmp_path / PROJECTIONS_SUBDIR / f"{LIBRARY_HASH[:16]}-umap{COORDS_SUFFIX}").exists()
