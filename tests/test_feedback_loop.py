"""The feedback loop: ratings and corrections -> JSONL export -> fine-tune -> register -> promote.

Everything is seeded through the real query functions on a migrated SQLite database; the fine-tune
is one epoch of the real training code on the tiny test checkpoint (its encoder is a random
mobilenet_v2, the CaptionerConfig default, so no weights are downloaded).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from captionbot.storage import captions, deliveries, jobs, model_versions, retention, users
from captionbot.storage.imagestore import ImageStore, sha256_hex
from captionbot.storage.models import Caption, ModelStatus, utcnow
from captionbot_cli.main import app
from tests.tiny_model import make_tiny_checkpoint, png_bytes
from training.datasets import load_jsonl
from training.feedback import dev_split, export_feedback

Factory = async_sessionmaker[AsyncSession]

# Platform ids and names that must never show up in an export.
USERS = {
    "alice": ("tg-alice-700001", "Alice Privatename"),
    "bob": ("tg-bob-700002", "Bob Privatename"),
    "carol": ("tg-carol-700003", "Carol Privatename"),  # opts out: her photos are never used
    "dave": ("tg-dave-700004", "Dave Privatename"),  # opts out: his ratings/corrections are never used
}
DEV_FRACTION = 0.3  # with the photos below: some dev and some train images (asserted in the tests)
EXTRA_COLORS = ["white", "black", "gray", "pink", "brown", "cyan", "navy", "olive"]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """SQLite only: the export is plain SELECTs that the storage tests already run on PostgreSQL."""
    return f"sqlite+aiosqlite:///{tmp_path}/captionbot.db"


@dataclass
class World:
    """The seeded photos, by what the export must do with them."""

    a: str = ""  # alice's photo: alice rated it +1, bob corrected it (rating -1)
    b: str = ""  # bob's photo: only bob's correction (the caption itself was rated -1)
    c: str = ""  # carol's photo (carol opted out), rated and corrected by alice
    d: str = ""  # alice's photo, rated and corrected only by dave (dave opted out)
    e: str = ""  # bob's photo, rated +1, whose file went missing from the store
    f: str = ""  # bob's photo, rated +1, purged by the retention sweep
    h: str = ""  # alice's photo rated -1 without a correction
    extra: list[str] = field(default_factory=list)  # alice's photos rated +1
    captions: dict[str, int] = field(default_factory=dict)  # sha256 -> caption id


async def _user_id(s: AsyncSession, who: str) -> int:
    platform_id, name = USERS[who]
    return (await users.get_or_create_user(s, platform="telegram", platform_user_id=platform_id, display_name=name)).id


async def _photo(factory: Factory, store: ImageStore, *, requester: str, color: str, caption: str) -> tuple[str, int]:
    """A photo sent by ``requester`` and captioned by the model: (sha256, caption id)."""
    data = png_bytes(color)
    sha = store.put(data)
    async with factory.begin() as s:
        user_id = await _user_id(s, requester)
        chat = await users.get_or_create_chat(
            s, platform="telegram", platform_chat_id=f"chat-{requester}", kind="private"
        )
        image = await jobs.add_image(s, sha256=sha, size_bytes=len(data), width=32, height=24, mime="image/png")
        request = await jobs.create_request(
            s, platform="telegram", chat_id=chat.id, requester_id=user_id, image_id=image.id
        )
        assert await jobs.claim_job(s, public_id=request.public_id, stale_before=utcnow() - timedelta(days=365))
        result = await jobs.complete_request(s, request_id=request.id, text=caption)
        assert result is not None
        return sha, result.id


async def _feedback(factory: Factory, caption_id: int, rater: str, **values: object) -> None:
    async with factory.begin() as s:
        await captions.set_feedback(s, caption_id=caption_id, user_id=await _user_id(s, rater), **values)  # type: ignore[arg-type]


async def _opt_out(factory: Factory, who: str) -> None:
    async with factory.begin() as s:
        assert await users.set_training_opt_out(s, user_id=await _user_id(s, who), opt_out=True)


async def _purge(factory: Factory, store: ImageStore, sha: str, caption_id: int) -> None:
    """Deliver the photo's reply, then let the retention sweep remove it (not kept for training)."""
    async with factory.begin() as s:
        caption = await s.get(Caption, caption_id)
        assert caption is not None
        assert await deliveries.claim_delivery(s, request_id=caption.request_id)
        assert await deliveries.mark_delivered(s, request_id=caption.request_id)
    async with factory.begin() as s:
        purged = await retention.purge_expired_images(
            s, older_than=utcnow() + timedelta(days=1), image_store=store, keep_for_training=False
        )
    assert purged == [sha]
    assert not store.exists(sha)


async def _seed(factory: Factory, store: ImageStore) -> World:
    w = World()
    w.a, cap_a = await _photo(factory, store, requester="alice", color="red", caption="a dog on the grass")
    await _feedback(factory, cap_a, "alice", rating=1)
    await _feedback(factory, cap_a, "bob", rating=-1, correction="  a brown dog   runs on the grass ")
    w.b, cap_b = await _photo(factory, store, requester="bob", color="blue", caption="a cat")
    await _feedback(factory, cap_b, "bob", rating=-1, correction="a cat sleeps on a blue sofa")
    w.c, cap_c = await _photo(factory, store, requester="carol", color="green", caption="a child plays")
    await _feedback(factory, cap_c, "alice", rating=1, correction="carol secret correction")
    w.d, cap_d = await _photo(factory, store, requester="alice", color="yellow", caption="a red car")
    await _feedback(factory, cap_d, "dave", rating=1, correction="dave secret correction")
    w.e, cap_e = await _photo(factory, store, requester="bob", color="purple", caption="two people sit on a bench")
    await _feedback(factory, cap_e, "alice", rating=1)
    w.f, cap_f = await _photo(factory, store, requester="bob", color="orange", caption="a child plays with a ball")
    await _feedback(factory, cap_f, "bob", rating=1)
    w.h, cap_h = await _photo(factory, store, requester="alice", color="magenta", caption="a bad caption")
    await _feedback(factory, cap_h, "alice", rating=-1)
    for color in EXTRA_COLORS:
        sha, cap = await _photo(factory, store, requester="alice", color=color, caption=f"a {color} wall")
        await _feedback(factory, cap, "alice", rating=1)
        w.extra.append(sha)
        w.captions[sha] = cap
    w.captions |= {w.a: cap_a, w.b: cap_b, w.c: cap_c, w.d: cap_d, w.e: cap_e, w.f: cap_f, w.h: cap_h}

    await _opt_out(factory, "carol")
    await _opt_out(factory, "dave")
    store.delete(w.e)  # the file is gone although the database still lists the photo
    await _purge(factory, store, w.f, cap_f)
    return w


@pytest.fixture
async def world(session_factory: Factory, image_store: ImageStore) -> World:
    return await _seed(session_factory, image_store)


def _rows(path: Path) -> dict[str, dict]:
    """JSONL rows by the photo's sha256 (the file name of the image path)."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return {Path(row["image"]).name: row for row in rows}


def _assert_points_into_store(row: dict, store: ImageStore) -> None:
    """The row names the stored photo itself (not a copy) and nothing but path, captions and split."""
    assert set(row) == {"image", "captions", "split"}
    path = Path(row["image"])
    assert path.is_absolute() and path.is_file()
    assert path == store.path(path.name).resolve()
    assert sha256_hex(path.read_bytes()) == path.name


# --- export ------------------------------------------------------------------------------------


async def test_export_has_corrections_and_good_ratings_only(
    session_factory: Factory, image_store: ImageStore, world: World, tmp_path: Path
) -> None:
    out = tmp_path / "feedback.jsonl"
    report = await export_feedback(session_factory, image_store, out, min_rating=1, dev_fraction=DEV_FRACTION)
    rows = _rows(out)

    assert set(rows) == {world.a, world.b, *world.extra}
    assert rows[world.a]["captions"] == ["a dog on the grass", "a brown dog runs on the grass"]
    assert rows[world.b]["captions"] == ["a cat sleeps on a blue sofa"]  # not the -1 caption "a cat"
    for sha in world.extra:
        assert len(rows[sha]["captions"]) == 1
    assert (report.images, report.captions, report.corrections, report.rated_captions) == (10, 11, 2, 9)
    assert (report.skipped_missing_files, report.skipped_purged, report.skipped) == (1, 1, 2)
    assert report.dev_images == sum(row["split"] == "dev" for row in rows.values()) > 0
    assert report.train_images == sum(row["split"] == "train" for row in rows.values()) > 0
    assert "skipped 2 images" in report.summary()


async def test_export_points_into_the_store_and_holds_no_personal_data(
    session_factory: Factory, image_store: ImageStore, world: World, tmp_path: Path
) -> None:
    out = tmp_path / "feedback.jsonl"
    await export_feedback(session_factory, image_store, out, min_rating=1, dev_fraction=DEV_FRACTION)
    text = out.read_text(encoding="utf-8")
    for row in _rows(out).values():
        _assert_points_into_store(row, image_store)
    for platform_id, name in USERS.values():
        assert platform_id not in text and name not in text
    # Opted-out people's photos and words are nowhere, whatever their ratings.
    for gone in ("carol secret correction", "dave secret correction", world.c, world.d, "a child plays"):
        assert gone not in text
    assert len(text) < 10_000  # paths and words only: no image bytes

    dataset = load_jsonl(out)
    assert {im.path.name for im in dataset.images} == set(_rows(out))
    assert dataset.split("dev") and dataset.split("train")


async def test_opting_out_later_removes_earlier_feedback(
    session_factory: Factory, image_store: ImageStore, world: World, tmp_path: Path
) -> None:
    await _opt_out(session_factory, "bob")
    out = tmp_path / "feedback.jsonl"
    report = await export_feedback(session_factory, image_store, out, min_rating=1)
    rows = _rows(out)

    assert world.b not in rows  # bob's own photo
    assert rows[world.a]["captions"] == ["a dog on the grass"]  # alice's rating stays, bob's correction goes
    assert "a brown dog" not in out.read_text(encoding="utf-8")
    assert report.skipped_missing_files == 0  # e was bob's photo: no longer counted
    assert report.skipped_purged == 0  # nor f


async def test_min_rating_none_of_the_thumbs_down(
    session_factory: Factory, image_store: ImageStore, world: World, tmp_path: Path
) -> None:
    out = tmp_path / "feedback.jsonl"
    await export_feedback(session_factory, image_store, out, min_rating=2)  # 1-5 stars, say: no +1 counts
    rows = _rows(out)
    assert set(rows) == {world.a, world.b}
    assert rows[world.a]["captions"] == ["a brown dog runs on the grass"]


async def test_split_is_stable_between_exports(
    session_factory: Factory, image_store: ImageStore, world: World, tmp_path: Path
) -> None:
    first = tmp_path / "round1.jsonl"
    await export_feedback(session_factory, image_store, first, min_rating=1, dev_fraction=DEV_FRACTION)
    # More feedback arrives: new photos and a new correction on an old one.
    for color in ("gold", "silver", "coral"):
        sha, cap = await _photo(session_factory, image_store, requester="bob", color=color, caption=f"{color} thing")
        await _feedback(session_factory, cap, "alice", rating=1)
    await _feedback(session_factory, world.captions[world.extra[0]], "bob", correction="a plain wall")
    second = tmp_path / "round2.jsonl"
    await export_feedback(session_factory, image_store, second, min_rating=1, dev_fraction=DEV_FRACTION)

    old, new = _rows(first), _rows(second)
    assert len(new) == len(old) + 3
    assert {sha: row["split"] for sha, row in new.items() if sha in old} == {
        sha: row["split"] for sha, row in old.items()
    }
    assert new[world.extra[0]]["captions"] == [f"a {EXTRA_COLORS[0]} wall", "a plain wall"]
    # Same feedback, same file: byte for byte.
    third = tmp_path / "round3.jsonl"
    await export_feedback(session_factory, image_store, third, min_rating=1, dev_fraction=DEV_FRACTION)
    assert third.read_bytes() == second.read_bytes()


def test_dev_split_depends_on_the_photo_alone() -> None:
    shas = [sha256_hex(secrets.token_bytes(8)) for _ in range(2000)]
    dev = {s for s in shas if dev_split(s, 0.1) == "dev"}
    assert 100 < len(dev) < 300  # about a tenth
    assert all(dev_split(s, 0.1) == ("dev" if s in dev else "train") for s in shas)
    # Raising the fraction only moves photos from train to dev, never back.
    assert dev <= {s for s in shas if dev_split(s, 0.2) == "dev"}
    assert not any(dev_split(s, 0.0) == "dev" for s in shas)


async def test_export_rejects_a_bad_dev_fraction(
    session_factory: Factory, image_store: ImageStore, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="dev_fraction"):
        await export_feedback(session_factory, image_store, tmp_path / "x.jsonl", min_rating=1, dev_fraction=1.0)


# --- the whole loop through the CLI --------------------------------------------------------------


def _cli(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _cli_fails(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 2, result.output
    return result.output


@pytest.fixture
def cli_env(migrated_db_url: str, image_store: ImageStore, tmp_path: Path) -> dict[str, str]:
    return {
        "CAPTIONBOT_DATABASE_URL": migrated_db_url,
        "CAPTIONBOT_DATA_DIR": str(tmp_path),
        "CAPTIONBOT_IMAGE_STORE_DIR": str(image_store.root),
    }


@pytest.fixture
def torch_threads():
    """Training sets torch's thread count for the process: put it back for the other tests."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


async def test_feedback_loop_closes(
    session_factory: Factory,
    image_store: ImageStore,
    world: World,
    cli_env: dict[str, str],
    tmp_path: Path,
    torch_threads: None,
) -> None:
    from captioner.checkpoint import load_checkpoint
    from training.train import TrainConfig, train

    # The model in service now: the tiny checkpoint, registered and promoted.
    initial = make_tiny_checkpoint(tmp_path / "models" / "initial.pt")
    assert "registered tiny-v1 (candidate)" in _cli(cli_env, "model", "register", str(initial))
    _cli(cli_env, "model", "promote", "tiny-v1")

    # Feedback -> dataset.
    data = tmp_path / "feedback.jsonl"
    output = _cli(cli_env, "feedback", "export", "--out", str(data), "--dev-fraction", str(DEV_FRACTION))
    assert "10 images" in output and "11 captions" in output
    assert set(_rows(data)) == {world.a, world.b, *world.extra}

    # Dataset -> fine-tuned model (1 epoch of the real training code, from the model in service).
    tc = TrainConfig(
        data=str(data),
        out=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "features"),
        init_from=str(initial),
        epochs=1,
        batch_images=4,
        device="cpu",
        threads=1,
        seed=0,
    )
    best = train(tc, resume=False)
    assert best.is_file()
    _, init_vocab, _ = load_checkpoint(initial)
    model, vocab, payload = load_checkpoint(best)
    assert vocab.words == init_vocab.words  # a drop-in replacement for the model it started from
    assert model.cfg.encoder == "mobilenet_v2" and model.cfg.image_size == 64
    assert "CIDEr-D" in payload["metrics"]["dev"]

    # Fine-tuned model -> registered -> promoted: workers pick it up before their next batch.
    output = _cli(cli_env, "model", "register", str(best), "--name", "feedback-r1")
    assert "registered feedback-r1 (candidate)" in output
    output = _cli(cli_env, "model", "promote", "feedback-r1")
    assert "promoted feedback-r1 (was tiny-v1, now retired)" in output
    async with session_factory() as s:
        current = await model_versions.current_model_version(s)
        assert current is not None and current.name == "feedback-r1"
        assert current.path == str(best.resolve()) and current.metrics == payload["metrics"]
        retired = await model_versions.get_model_version(s, name="tiny-v1")
        assert retired is not None and retired.status == ModelStatus.RETIRED

    listing = _cli(cli_env, "model", "list")
    lines = {line.split("│")[1].strip(): line for line in listing.splitlines() if "│" in line}
    assert "retired" in lines["tiny-v1"] and "serving" in lines["feedback-r1"]
    assert current.promoted_at is not None and current.promoted_at.strftime("%Y-%m-%d %H:%M") in lines["feedback-r1"]
    assert f"{payload['metrics']['dev']['CIDEr-D']:.3f}" in lines["feedback-r1"]

    # Promoting by file path works too (back to the initial model).
    assert "promoted tiny-v1" in _cli(cli_env, "model", "promote", str(initial))


async def test_model_commands_refuse_what_workers_could_not_load(cli_env: dict[str, str], tmp_path: Path) -> None:
    not_a_model = tmp_path / "notes.pt"
    not_a_model.write_bytes(b"not a checkpoint")
    assert "not a readable checkpoint" in _cli_fails(cli_env, "model", "register", str(not_a_model))
    assert "no registered model version" in _cli_fails(cli_env, "model", "promote", "nope")

    model = make_tiny_checkpoint(tmp_path / "m.pt")
    _cli(cli_env, "model", "register", str(model), "--name", "m1")
    other = make_tiny_checkpoint(tmp_path / "other.pt", version="tiny-v2", seed=1)
    assert "choose another --name" in _cli_fails(cli_env, "model", "register", str(other), "--name", "m1")
    model.write_bytes(other.read_bytes())  # overwritten after registration
    assert "changed since it was registered" in _cli_fails(cli_env, "model", "promote", "m1")
    model.unlink()
    assert "missing" in _cli_fails(cli_env, "model", "promote", "m1")


def test_cli_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    env = {"CAPTIONBOT_DATABASE_URL": f"sqlite:///{tmp_path}/empty.db", "CAPTIONBOT_DATA_DIR": str(tmp_path)}
    assert "captionbot db upgrade" in _cli_fails(env, "feedback", "export", "--out", str(tmp_path / "x.jsonl"))
    assert "captionbot db upgrade" in _cli_fails(env, "model", "list")
